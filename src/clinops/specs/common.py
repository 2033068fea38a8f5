"""What every clinops resource shares: camelCase spec models, object metadata and loading from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from clinops.errors import ClinopsError

API_GROUP = "clinops.io"
API_VERSION = f"{API_GROUP}/v1alpha1"
# RFC 1123 subdomain: what Kubernetes accepts as an object name.
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class SpecModel(BaseModel):
    """Fields are snake_case in Python and camelCase in YAML, as Kubernetes APIs are; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(max_length=253, pattern=DNS_NAME, description="Object name, unique in its namespace.")
    namespace: str | None = Field(None, description="Namespace of the object.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    generation: int | None = Field(None, description="Set by the API server; bumped on every spec change.")


Resource = TypeVar("Resource", bound=BaseModel)


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """One line per problem, naming the field path as it is written in YAML (``spec.tuning.trials``).

    ``prefix`` is where the validated document sits in its resource (``spec`` for a spec validated alone).
    """
    parts = []
    for error in exc.errors():
        path = ".".join([*filter(None, [prefix]), *(str(p) for p in error["loc"])]) or "(root)"
        parts.append(f"{path}: {error['msg']}")
    return "; ".join(parts)


def parse_resource(model: type[Resource], document: Any, *, source: str = "input") -> Resource:
    if not isinstance(document, dict):
        raise ClinopsError(f"{source}: expected a YAML mapping with apiVersion, kind, metadata and spec")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ClinopsError(f"{source}: invalid {model.__name__}: {describe_validation_error(exc)}") from exc


def load_resource(model: type[Resource], path: Path) -> Resource:
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ClinopsError(f"no such file: {path}") from exc
    except yaml.YAMLError as exc:
        raise ClinopsError(f"{path}: not valid YAML: {exc}") from exc
    return parse_resource(model, document, source=str(path))
