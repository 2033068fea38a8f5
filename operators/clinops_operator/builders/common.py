"""What every owned object shares: recommended labels, child names and standard conditions."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from clinops.specs.common import describe_validation_error
from clinops.specs.status import Condition, ConditionStatus

PART_OF = "clinops"
MANAGED_BY = "clinops-operator"
# A Service name is an RFC 1035 label, the strictest name any child carries; a CR name only has to be a subdomain.
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_LABEL_LENGTH = 63

Spec = TypeVar("Spec", bound=BaseModel)


def now() -> str:
    """The current instant as conditions and status timestamps write it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((body.get("status") or {}).get("conditions") or [])


class InvalidSpecError(ValueError):
    """An admitted object the operator cannot act on; the message names the field path as written in YAML."""


def parse_spec(model: type[Spec], document: Any, *, path: str = "spec") -> Spec:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidSpecError(describe_validation_error(exc, prefix=path)) from exc


def labels(*, name: str, instance: str, component: str) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels every owned object carries."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_labels(*, name: str, instance: str, component: str) -> dict[str, str]:
    """The subset that selects pods: immutable on a Deployment, so it never carries anything that may change."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
    }


def child_name(parent: str, role: str | None = None) -> str:
    return parent if role is None else f"{parent}-{role}"


def name_problem(name: str, *, longest_suffix: str = "") -> str | None:
    """Why ``name`` cannot name the children (a Service needs an RFC 1035 label), or None when it can."""
    if len(name) + len(longest_suffix) > MAX_LABEL_LENGTH:
        return f"must be at most {MAX_LABEL_LENGTH - len(longest_suffix)} characters: its children are named after it"
    if not DNS_1035_LABEL.match(name):
        return "must start with a letter and hold only lowercase letters, digits and '-': it names a Service"
    return None


def condition(
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
    previous: list[dict[str, Any]],
) -> dict[str, Any]:
    """A condition whose ``lastTransitionTime`` moves only when its status changes."""
    since = now
    for old in previous:
        if old.get("type") == type and old.get("status") == status.value and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
    built = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    return built.model_dump(mode="json", by_alias=True, exclude_none=True)


def restricted_pod_security(user: int) -> dict[str, Any]:
    """A pod securityContext the ``restricted`` Pod Security Standard admits."""
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security(*, read_only_root: bool = True) -> dict[str, Any]:
    """A container securityContext the ``restricted`` Pod Security Standard admits."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def failed_status(
    *,
    phase: str,
    problem: str,
    reason: str,
    generation: int | None,
    previous_conditions: list[dict[str, Any]],
    now: str,
) -> dict[str, Any]:
    """The status of an object the apiserver admitted but the operator cannot act on: Failed, not Ready."""

    def failed(type: str, status: ConditionStatus) -> dict[str, Any]:
        return condition(
            type=type,
            status=status,
            reason=reason,
            message=problem,
            generation=generation,
            now=now,
            previous=previous_conditions,
        )

    return {
        "phase": phase,
        "conditions": [failed("Failed", ConditionStatus.TRUE), failed("Ready", ConditionStatus.FALSE)],
        "observedGeneration": generation,
    }
