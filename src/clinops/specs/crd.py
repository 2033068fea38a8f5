"""CustomResourceDefinitions generated from the spec models: structural schemas, CEL rules, printer columns."""

from __future__ import annotations

import argparse
import copy
import sys
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from clinops.specs.common import API_GROUP
from clinops.specs.drift_monitor import DriftMonitorSpec, DriftMonitorStatus, RetrainSpec, StatisticsSpec
from clinops.specs.model_deployment import AutoscalingSpec, CanarySpec, ModelDeploymentSpec, VersionRef
from clinops.specs.status import ModelDeploymentStatus, TrainingJobStatus
from clinops.specs.training_job import ParameterRange, TrainingJobSpec

VERSION = "v1alpha1"
CATEGORIES = ["clinops"]
HEADER = "# Generated from the clinops.specs models by `make crds`; edit the models, not this file.\n"
# Caps where a model sets none, so a megabyte string or a list of a million items never reaches etcd (whose
# request limit is about 1.5 MB) and CEL rules over these values have a bounded cost.
DEFAULT_MAX_LENGTH = 4096
DEFAULT_MAX_ITEMS = 256
DEFAULT_MAX_PROPERTIES = 256
# Python's str.split() of a five-field cron expression, as an RE2 pattern.
FIVE_FIELDS = r"^\s*\S+(\s+\S+){4}\s*$"
SCALAR_TYPES = {"number", "integer", "string", "boolean"}


class SchemaError(ValueError):
    """A model uses a construct a structural schema cannot express."""


@dataclass(frozen=True)
class Cel:
    """An ``x-kubernetes-validations`` rule on the object a model describes."""

    rule: str
    message: str
    field_path: str | None = None

    def manifest(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        return entry


@dataclass(frozen=True)
class FieldSchema:
    """Keywords merged into one field's schema (pydantic's field validators have no JSON Schema form)."""

    field: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Partial:
    """A validator whose rule the apiserver cannot check (the operator reports it as an InvalidSpec condition)."""

    why: str


# The apiserver's form of every pydantic validator of the spec models, keyed by (defining class, validator name).
# Subclasses inherit the rules of their bases, as they inherit the validators; test_crds fails for a validator
# without an entry here.
VALIDATORS: dict[tuple[type[BaseModel], str], tuple[Cel | FieldSchema | Partial, ...]] = {
    (VersionRef, "alias_or_version"): (
        Cel("has(self.alias) != has(self.version)", "set exactly one of alias or version"),
    ),
    (CanarySpec, "not_a_body_field"): (
        Cel(
            "!has(self.stickyKey) || !(self.stickyKey in ['features', 'instances'])",
            "stickyKey must not be features or instances: those name the request body's parts",
            ".stickyKey",
        ),
    ),
    (AutoscalingSpec, "ordered"): (
        Cel(
            "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            "minReplicas must not exceed maxReplicas",
            ".minReplicas",
        ),
    ),
    (ModelDeploymentSpec, "canary_differs"): (
        Cel(
            "!has(self.canary) || !("
            "(has(self.canary.alias) && has(self.model.alias) && self.canary.alias == self.model.alias) || "
            "(has(self.canary.version) && has(self.model.version) && self.canary.version == self.model.version))",
            "canary names the same alias or version as model",
            ".canary",
        ),
    ),
    (ParameterRange, "bounds_fit_type"): (
        Cel(
            "self.type == 'choice' || (has(self.low) && has(self.high))",
            "uniform, loguniform and int need low and high",
        ),
        Cel("!has(self.low) || !has(self.high) || self.low <= self.high", "low must not exceed high", ".low"),
        Cel("self.type != 'loguniform' || !has(self.low) || self.low > 0", "loguniform needs low > 0", ".low"),
        # values holds numbers, strings and booleans mixed, which only an untyped list can; CEL cannot see it.
        Partial("choice needs a non-empty values list: values is untyped, so CEL cannot read it"),
    ),
    (TrainingJobSpec, "unique"): (FieldSchema("algorithms", {"x-kubernetes-list-type": "set"}),),
    (TrainingJobSpec, "five_field_cron"): (FieldSchema("schedule", {"pattern": FIVE_FIELDS}),),
    (TrainingJobSpec, "overrides_name_chosen_algorithms"): (
        Cel(
            "!has(self.tuning) || !has(self.tuning.searchSpace) || "
            "self.tuning.searchSpace.all(a, has(self.algorithms) && a in self.algorithms)",
            "tuning.searchSpace names algorithms not in algorithms",
            ".tuning.searchSpace",
        ),
    ),
    (StatisticsSpec, "one_threshold"): (
        Cel(
            "(has(self.numerical) && has(self.numerical.threshold)) == "
            "(has(self.categorical) && has(self.categorical.threshold)) && "
            "(!has(self.numerical) || !has(self.numerical.threshold) || "
            "self.numerical.threshold == self.categorical.threshold)",
            "numerical.threshold and categorical.threshold must be equal or both unset "
            "(the drift job applies one threshold to every feature)",
            ".numerical.threshold",
        ),
    ),
    (RetrainSpec, "ref_or_template"): (
        Cel("has(self.trainingJobRef) != has(self.template)", "set exactly one of trainingJobRef or template"),
    ),
}

# Schema keywords that are not validators' forms: conditions as a map keyed by type, as metav1 lists them.
FIELD_SCHEMAS: dict[type[BaseModel], tuple[FieldSchema, ...]] = {
    status: (FieldSchema("conditions", {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),)
    for status in (TrainingJobStatus, ModelDeploymentStatus, DriftMonitorStatus)
}


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            entry["description"] = self.description
        if self.priority:
            entry["priority"] = self.priority
        return entry


PHASE = Column("Phase", ".status.phase", description="Where the resource is in its life cycle.")
AGE = Column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: Sequence[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: Sequence[Column] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.plural}.{API_GROUP}"

    @property
    def file_name(self) -> str:
        return f"{API_GROUP}_{self.plural}.yaml"


KINDS: tuple[Kind, ...] = (
    Kind(
        "TrainingJob",
        "trainingjobs",
        ["tj"],
        TrainingJobSpec,
        TrainingJobStatus,
        [
            PHASE,
            Column("Model", ".spec.model.name", description="Registered model name."),
            Column("Version", ".status.modelVersion", description="Registered version of the best trial."),
            Column("Promoted", ".status.promoted", "boolean", priority=1),
            AGE,
        ],
    ),
    Kind(
        "ModelDeployment",
        "modeldeployments",
        ["md"],
        ModelDeploymentSpec,
        ModelDeploymentStatus,
        [
            PHASE,
            Column("Model", ".spec.model.name", description="Registered model name."),
            Column("Version", ".status.servingVersion", description="Version the primary serves."),
            Column("Canary", ".status.canaryVersion", priority=1),
            Column("Ready", ".status.readyReplicas", "integer"),
            AGE,
        ],
    ),
    Kind(
        "DriftMonitor",
        "driftmonitors",
        ["dm"],
        DriftMonitorSpec,
        DriftMonitorStatus,
        [
            PHASE,
            Column("Deployment", ".spec.deployment", description="The watched ModelDeployment."),
            Column("Version", ".status.modelVersion", description="Version of the reference profile.", priority=1),
            Column("Drift Share", ".status.lastWindow.driftShare", "number", "Drifted share of the last window."),
            Column("Drifted Windows", ".status.driftedWindows", "integer", "Consecutive drifted windows."),
            Column("Retraining", ".status.lastRetraining.name", priority=1),
            AGE,
        ],
    ),
)


def _models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``root`` and every model its fields reach."""
    seen: set[type[BaseModel]] = set()
    pending: list[Any] = [root]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                continue
            seen.add(annotation)
            yield annotation
            pending.extend(f.annotation for f in annotation.model_fields.values())
        else:
            pending.extend(typing.get_args(annotation))


def _own_validators(model: type[BaseModel]) -> Iterator[str]:
    decorators = model.__pydantic_decorators__
    yield from (*decorators.model_validators, *decorators.field_validators)


def validator_forms(model: type[BaseModel]) -> list[Cel | FieldSchema | Partial]:
    """The registered forms of every validator ``model`` has, its own or inherited; KeyError names a missing one."""
    forms: list[Cel | FieldSchema | Partial] = []
    for name in _own_validators(model):
        owner = next(base for base in model.__mro__ if name in vars(base))
        try:
            forms.extend(VALIDATORS[(owner, name)])
        except KeyError:
            raise KeyError(f"{owner.__name__}.{name} has no apiserver form in clinops.specs.crd.VALIDATORS") from None
    return forms


def _field_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Defaults pydantic leaves out of its JSON Schema: those of ``default_factory`` fields, by alias."""
    defaults = {}
    for name, info in model.model_fields.items():
        if info.default_factory is None or info.default is not PydanticUndefined:
            continue
        value = info.default_factory()  # type: ignore[call-arg]
        # An empty object lets the apiserver fill in the nested defaults, which are the factory model's own.
        defaults[info.alias or name] = {} if isinstance(value, BaseModel) else to_jsonable_python(value)
    return defaults


def _annotate(schema: dict[str, Any], model: type[BaseModel], *, defaults: bool) -> None:
    """Attach a model's CEL rules, field schemas and factory defaults to its JSON Schema node in place."""
    properties = schema.setdefault("properties", {})
    aliases = {name: info.alias or name for name, info in model.model_fields.items()}
    rules = []
    for form in (*validator_forms(model), *FIELD_SCHEMAS.get(model, ())):
        if isinstance(form, Cel):
            rules.append(form.manifest())
        elif isinstance(form, FieldSchema):
            properties[aliases[form.field]].update(form.schema)
    if rules:
        schema["x-kubernetes-validations"] = rules
    if defaults:
        for alias, value in _field_defaults(model).items():
            properties[alias]["default"] = value


def _json_schema(model: type[BaseModel], *, defaults: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    by_name = {m.__name__: m for m in _models(model)}
    _annotate(schema, model, defaults=defaults)
    for name, definition in definitions.items():
        if name in by_name:
            _annotate(definition, by_name[name], defaults=defaults)
    return schema, definitions


def _scalar_union(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    types = {v.get("type") for v in variants}
    if any(set(v) - {"type"} for v in variants) or not types <= SCALAR_TYPES:
        return None
    if types == {"integer", "string"}:
        return {"x-kubernetes-int-or-string": True}
    # A structural schema types every node, save these: mixed scalars are kept as sent and checked by the models.
    return {"x-kubernetes-preserve-unknown-fields": True}


def structural(node: Mapping[str, Any], definitions: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """``node`` as a structural schema: ``$ref`` inlined, Optional as nullable, OpenAPI v3.0 bounds, caps set."""
    node = dict(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        # The field's own keywords (its description, its default) win over the referenced model's.
        node = {**copy.deepcopy(target), **node}
    node.pop("title", None)
    if node.get("default", 0) is None:
        del node["default"]
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if "anyOf" in node:
        variants = node.pop("anyOf")
        concrete = [v for v in variants if v.get("type") != "null"]
        if len(concrete) == 1:
            result = structural({**concrete[0], **node}, definitions, path)
        else:
            union = _scalar_union(concrete)
            if union is None:
                raise SchemaError(f"{path or '(root)'}: a union of {concrete} has no structural form")
            result = _finish({**node, **union}, definitions, path)
        if len(concrete) < len(variants):
            result["nullable"] = True
        return result
    return _finish(node, definitions, path)


def _finish(node: dict[str, Any], definitions: Mapping[str, Any], path: str) -> dict[str, Any]:
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[inclusive] = node.pop(bound)
            node[bound] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    kind = node.get("type")
    if kind == "string" and "enum" not in node:
        node.setdefault("maxLength", DEFAULT_MAX_LENGTH)
    if kind == "array":
        node.setdefault("maxItems", DEFAULT_MAX_ITEMS)
        node["items"] = structural(node.get("items", {}), definitions, f"{path}[]")
    if kind == "object":
        if "properties" in node:
            node["properties"] = {
                key: structural(value, definitions, f"{path}.{key}") for key, value in node["properties"].items()
            }
        if isinstance(node.get("additionalProperties"), dict):
            node.setdefault("maxProperties", DEFAULT_MAX_PROPERTIES)
            node["additionalProperties"] = structural(node["additionalProperties"], definitions, f"{path}.*")
        keys = node.pop("propertyNames", None)
        if keys is not None:
            allowed = structural(keys, definitions, f"{path}.keys()").get("enum")
            if allowed is None:
                raise SchemaError(f"{path}: only enum map keys have a structural form")
            listed = ", ".join(f"'{key}'" for key in allowed)
            node.setdefault("x-kubernetes-validations", []).append(
                {"rule": f"self.all(k, k in [{listed}])", "message": f"keys must be one of {', '.join(allowed)}"}
            )
    if kind is None and not (
        node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
    ):
        raise SchemaError(f"{path or '(root)'}: no type")
    return node


# Keywords in reading order: what a node is, then its constraints, then what it contains.
KEY_ORDER = ("description", "type", "nullable", "default", "enum", "format", "pattern")
TRAILING_KEYS = ("required", "properties", "additionalProperties", "items", "x-kubernetes-validations")


def _tidy(node: Any, *, defaults: bool) -> Any:
    """Keywords in ``KEY_ORDER``, the rest alphabetical, nested schemas last; without defaults unless ``defaults``."""
    if not isinstance(node, dict):
        return node
    keys = [k for k in KEY_ORDER if k in node]
    keys += sorted(k for k in node if k not in KEY_ORDER and k not in TRAILING_KEYS)
    keys += [k for k in TRAILING_KEYS if k in node]
    tidy = {}
    for key in keys:
        value = node[key]
        if key == "default" and not defaults:
            continue
        if key == "properties":
            value = {name: _tidy(schema, defaults=defaults) for name, schema in value.items()}
        elif key in ("additionalProperties", "items"):
            value = _tidy(value, defaults=defaults)
        tidy[key] = value
    return tidy


def openapi_schema(kind: Kind) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of one kind: apiVersion, kind, metadata, spec (required) and status."""
    spec, spec_definitions = _json_schema(kind.spec, defaults=True)
    status, status_definitions = _json_schema(kind.status, defaults=False)
    return {
        "type": "object",
        "description": (sys.modules[kind.spec.__module__].__doc__ or kind.kind).strip(),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version of the object: clinops.io/v1alpha1."},
            "kind": {"type": "string", "description": f"Kind of the object: {kind.kind}."},
            "metadata": {"type": "object"},
            "spec": _tidy(
                {**structural(spec, spec_definitions, ".spec"), "description": f"Desired state of the {kind.kind}."},
                defaults=True,
            ),
            # The operator writes every status field it reports; a default would invent values it never set.
            "status": _tidy(
                {
                    **structural(status, status_definitions, ".status"),
                    "description": f"Observed state of the {kind.kind}, written by the operator.",
                },
                defaults=False,
            ),
        },
    }


def manifest(kind: Kind) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.name},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(kind)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [column.manifest() for column in kind.columns],
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    return HEADER + yaml.safe_dump(manifest(kind), sort_keys=False, width=120, allow_unicode=True)


def write(directory: Path) -> list[Path]:
    """One ``<group>_<plural>.yaml`` per kind in ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / kind.file_name
        path.write_text(render(kind))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinops.specs.crd", description=__doc__)
    parser.add_argument("directory", type=Path, help="Where the CRD manifests are written (manifests/crds).")
    args = parser.parse_args(argv)
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
