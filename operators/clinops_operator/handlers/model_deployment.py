"""ModelDeployment: reconcile the model server's children and report their rollout in status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import kopf

from clinops.specs.common import API_GROUP
from clinops.specs.model_deployment import ModelDeploymentSpec
from clinops.specs.status import DeploymentPhase
from clinops_operator import k8s, metrics
from clinops_operator.builders import model_deployment as build
from clinops_operator.builders.common import (
    MANAGED_BY,
    InvalidSpecError,
    child_name,
    conditions_of,
    name_problem,
    now,
    parse_spec,
)
from clinops_operator.settings import Runtime, runtime

KIND = "ModelDeployment"
PLURAL = "modeldeployments"
VERSION = "v1alpha1"
LONGEST_ROLE = f"-{build.SPEC_ROLE}"
# How long a Deployment event waits for the reconcile of its owner's new generation to write that generation's
# status first.
PENDING_RECONCILE_S = 15.0


def parse(name: str, spec: Mapping[str, Any]) -> ModelDeploymentSpec:
    """The typed spec, or InvalidSpecError naming the field: the apiserver admits what its schema and CEL can check."""
    problem = name_problem(name, longest_suffix=LONGEST_ROLE)
    if problem is not None:
        raise InvalidSpecError(f"metadata.name: {problem}")
    return parse_spec(ModelDeploymentSpec, dict(spec))


def _service_monitors(run: Runtime) -> bool:
    if run.service_monitors != "auto":
        return run.service_monitors in ("1", "true", "yes", "on")
    return k8s.serves(run.api, "monitoring.coreos.com/v1", "ServiceMonitor")


def _write_status(
    run: Runtime,
    namespace: str,
    name: str,
    spec: ModelDeploymentSpec | None,
    *,
    reconciled: bool,
    deployment: Mapping[str, Any] | None = None,
) -> bool:
    """No ``spec``: the object's own, parsed from the same read the status is computed from. The Deployment is read
    after the object, so the write that lands was computed from the newest state of both: an event's own copy of
    the Deployment may be older than a read another writer already made. False when the reconcile of the object's
    current generation has yet to write its status, so this write had to wait for it.

    ``deployment``: the Deployment as the reconcile's own write just returned it, used instead of that read on the
    first attempt only (a rollout that moves after it has its own event, which waits for this write)."""
    waiting = False
    known = deployment

    def compute(current: Mapping[str, Any]) -> dict[str, Any] | None:
        nonlocal waiting, known
        try:
            served = spec or parse(name, current.get("spec") or {})
        except InvalidSpecError:
            return None
        generation = current["metadata"].get("generation")
        previous = current.get("status") or {}
        waiting = False
        if reconciled:
            observed = generation
        elif previous.get("phase") == DeploymentPhase.FAILED:
            return None
        elif previous.get("observedGeneration") != generation:
            # The reconcile of the current generation stamps it; a rollout seen before that must not.
            waiting = True
            return None
        else:
            observed = previous["observedGeneration"]
        rollout = known or k8s.read(run.api, "apps/v1", "Deployment", namespace, child_name(name))
        known = None
        return build.status(
            name=name,
            namespace=namespace,
            spec=served,
            config=run.serving,
            deployment=rollout,
            observed_generation=observed,
            previous_conditions=conditions_of(current),
            now=now(),
        )

    k8s.update_status(run.api, KIND, namespace, name, compute)
    return not waiting


@kopf.on.resume(API_GROUP, VERSION, PLURAL)
@kopf.on.create(API_GROUP, VERSION, PLURAL)
@kopf.on.update(API_GROUP, VERSION, PLURAL, field="spec")
@metrics.reconciled(KIND)
def reconcile(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    body: kopf.Body,
    meta: kopf.Meta,
    memo: Any,
    reason: str,
    retry: int,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    run = runtime(memo)
    assert namespace is not None, "ModelDeployment is a namespaced kind"
    try:
        parsed = parse(name, spec)
    except InvalidSpecError as exc:
        problem = str(exc)
        failed = build.failed_status(
            problem=problem, generation=meta.get("generation"), previous_conditions=conditions_of(body), now=now()
        )
        k8s.update_status(run.api, KIND, namespace, name, lambda _current: failed)
        raise kopf.PermanentError(f"Rejected the spec: {problem}") from exc
    children = build.children(name=name, spec=parsed, config=run.serving, service_monitors=_service_monitors(run))
    kopf.adopt(children, owner=body)
    applied = {child["kind"]: k8s.apply(run.api, child, logger=logger) for child in children}
    # A new object's first attempt has no children from an earlier spec: whatever of its name is left from a
    # deleted namesake belongs to that one and goes with it (garbage collection by owner reference). A retried
    # creation may have made children for a spec that changed since.
    if reason != kopf.Reason.CREATE or retry > 0:
        for api_version, kind, stale in build.absent_children(name=name, spec=parsed):
            k8s.delete(run.api, api_version, kind, namespace, stale, logger=logger)
    _write_status(run, namespace, name, parsed, reconciled=True, deployment=applied.get("Deployment"))
    run.status_written.announce((namespace, name))


def _owner(body: Mapping[str, Any]) -> str | None:
    for reference in body["metadata"].get("ownerReferences") or []:
        if reference.get("kind") == KIND and reference.get("apiVersion", "").startswith(f"{API_GROUP}/"):
            return str(reference["name"])
    return None


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    labels={"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/component": build.COMPONENT},
)
async def deployment_changed(
    body: kopf.Body, namespace: str | None, type: str, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    """A server Deployment moved: its owner's status follows (phase, readyReplicas, the Ready condition)."""
    owner = _owner(body)
    if owner is None or namespace is None or type == "DELETED":
        return
    if not build.template_observed(body):
        # What such a copy would write, the reconcile that wrote the template writes itself (it is how a new
        # Deployment is first seen); the controller's next status write brings an event of its own.
        return
    run = runtime(memo)
    # The owner's reconcile may be under way: its status is computed from a Deployment this rollout may have
    # moved past since, and no later event need come, so this one is written once the reconcile has written, from
    # a fresh read. The reconcile announces its write; waiting for that asynchronously (not polling, not parking a
    # thread) keeps a burst of new objects from spending the apiserver and the handlers' threads on waiting.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PENDING_RECONCILE_S
    with run.status_written.expecting((namespace, owner)) as written:
        while True:
            written.clear()
            if await asyncio.to_thread(_write_status, run, namespace, owner, None, reconciled=False):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await written.wait()
            if loop.time() >= deadline:
                break
    logger.info(f"Left the status of {owner} to its reconcile, which has not written it for {PENDING_RECONCILE_S:.0f}s")
