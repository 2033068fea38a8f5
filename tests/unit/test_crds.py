from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from clinops.specs import crd
from clinops.specs.common import API_VERSION, load_resource
from clinops.specs.drift_monitor import DriftMonitor
from clinops.specs.model_deployment import ModelDeployment
from clinops.specs.training_job import TrainingJob

ROOT = Path(__file__).parents[2]
CRDS = ROOT / "manifests" / "crds"
SAMPLES = ROOT / "manifests" / "samples"
RESOURCES: dict[str, type[BaseModel]] = {
    "TrainingJob": TrainingJob,
    "ModelDeployment": ModelDeployment,
    "DriftMonitor": DriftMonitor,
}
# What a structural schema may carry beside the validation keywords (apiextensions JSONSchemaProps).
ALLOWED_KEYS = {
    "type", "description", "nullable", "default", "enum", "format", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
    "maxProperties", "required", "properties", "additionalProperties", "items", "x-kubernetes-validations",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
}  # fmt: skip


def documents() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(CRDS.glob("*.yaml"))}


def schema_of(kind: str) -> dict[str, Any]:
    (document,) = [d for d in documents().values() if d["spec"]["names"]["kind"] == kind]
    return document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from nodes(node["items"], f"{path}[]")


def rules(kind: str) -> dict[str, list[str]]:
    return {
        path: [r["rule"] for r in node["x-kubernetes-validations"]]
        for path, node in nodes(schema_of(kind))
        if "x-kubernetes-validations" in node
    }


def test_generated_files_are_not_stale(tmp_path: Path) -> None:
    written = crd.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in CRDS.glob("*.yaml")), "run make crds"
    for path in written:
        assert path.read_text() == (CRDS / path.name).read_text(), f"{path.name} is stale: run make crds"


def test_cli_writes_one_file_per_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main([str(tmp_path / "out")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in (tmp_path / "out").iterdir()} == set(
        RESOURCES
    )


@pytest.mark.parametrize("kind", RESOURCES)
def test_names_versions_and_subresources(kind: str) -> None:
    (document,) = [d for d in documents().values() if d["spec"]["names"]["kind"] == kind]
    spec = document["spec"]
    group, version = API_VERSION.split("/")
    assert spec["group"] == group
    assert document["metadata"]["name"] == f"{spec['names']['plural']}.{group}"
    assert spec["names"]["categories"] == ["clinops"]
    assert spec["names"]["shortNames"] == [{"TrainingJob": "tj", "ModelDeployment": "md", "DriftMonitor": "dm"}[kind]]
    (served,) = spec["versions"]
    assert served["name"] == version
    assert served["served"]
    assert served["storage"]
    assert served["subresources"] == {"status": {}}
    columns = [c["name"] for c in served["additionalPrinterColumns"]]
    assert columns[0] == "Phase"
    assert columns[-1] == "Age"
    if kind != "DriftMonitor":
        assert {"Model", "Version"} <= set(columns)


@pytest.mark.parametrize("kind", RESOURCES)
def test_schemas_are_structural(kind: str) -> None:
    schema = schema_of(kind)
    assert "$ref" not in yaml.safe_dump(schema)
    for path, node in nodes(schema):
        assert set(node) <= ALLOWED_KEYS, (path, set(node) - ALLOWED_KEYS)
        assert not {"anyOf", "oneOf", "allOf", "$ref"} & set(node), path
        untyped = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        assert "type" in node or untyped, f"{path} has no type"
        ours = path.startswith((".spec", ".status"))
        if ours:
            assert node.get("description") or path.endswith("[]") or path.endswith("*"), f"{path} undescribed"
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, path
            assert set(node.get("required", [])) <= set(node["properties"]), path
        if ours and node.get("type") == "string" and "enum" not in node:
            assert node["maxLength"] <= 32768, path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if isinstance(node.get("additionalProperties"), dict):
            assert "maxProperties" in node, path


def test_defaults_enums_and_bounds_reach_the_schema() -> None:
    spec = schema_of("TrainingJob")["properties"]["spec"]["properties"]
    assert spec["algorithms"]["default"] == ["xgboost"]
    assert spec["algorithms"]["items"]["enum"] == [
        "xgboost",
        "random_forest",
        "logistic_regression",
        "isolation_forest",
    ]
    assert spec["algorithms"]["x-kubernetes-list-type"] == "set"
    assert spec["tuning"]["default"] == {}
    assert spec["tuning"]["properties"]["trials"] == {
        "description": "Trial budget across all algorithms.",
        "type": "integer",
        "default": 24,
        "maximum": 2000,
        "minimum": 1,
    }
    assert spec["schedule"]["nullable"] is True
    assert spec["schedule"]["pattern"] == crd.FIVE_FIELDS
    md = schema_of("ModelDeployment")["properties"]["spec"]["properties"]
    assert md["canary"]["properties"]["trafficPercent"]["minimum"] == 0
    assert md["canary"]["properties"]["trafficPercent"]["maximum"] == 100
    assert md["threshold"]["exclusiveMinimum"] is True
    status = schema_of("DriftMonitor")["properties"]["status"]
    assert all("default" not in node for _, node in nodes(status))
    assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


@pytest.mark.parametrize(
    ("kind", "path", "fragment"),
    [
        ("ModelDeployment", ".spec.model", "has(self.alias) != has(self.version)"),
        ("ModelDeployment", ".spec.canary", "has(self.alias) != has(self.version)"),
        ("ModelDeployment", ".spec.canary", "'features', 'instances'"),
        ("ModelDeployment", ".spec", "self.canary.alias == self.model.alias"),
        ("ModelDeployment", ".spec.autoscaling", "self.minReplicas <= self.maxReplicas"),
        ("TrainingJob", ".spec", "searchSpace.all(a"),
        ("TrainingJob", ".spec.tuning.searchSpace.*.*", "self.low <= self.high"),
        ("TrainingJob", ".spec.tuning.searchSpace", "self.all(k, k in ['xgboost'"),
        ("TrainingJob", ".spec.promotion.gates", "self.all(k, k in ['roc_auc'"),
        ("DriftMonitor", ".spec.statistics", "self.numerical.threshold == self.categorical.threshold"),
        ("DriftMonitor", ".spec.action.retrain", "has(self.trainingJobRef) != has(self.template)"),
        ("DriftMonitor", ".spec.action.retrain.template", "searchSpace.all(a"),
    ],
)
def test_cel_rules_present(kind: str, path: str, fragment: str) -> None:
    assert any(fragment in rule for rule in rules(kind).get(path, [])), rules(kind)


def reachable_models() -> Iterator[type[BaseModel]]:
    for kind in crd.KINDS:
        yield from crd._models(kind.spec)
        yield from crd._models(kind.status)


@pytest.mark.parametrize("model", sorted(set(reachable_models()), key=lambda m: m.__name__), ids=lambda m: m.__name__)
def test_every_validator_has_an_apiserver_form(model: type[BaseModel]) -> None:
    decorators = model.__pydantic_decorators__
    names = [*decorators.model_validators, *decorators.field_validators]
    forms = crd.validator_forms(model)
    assert len(forms) >= len(names)


def test_a_validator_without_a_form_is_an_error() -> None:
    from pydantic import model_validator

    from clinops.specs.common import SpecModel

    class Unmapped(SpecModel):
        @model_validator(mode="after")
        def anything(self) -> Unmapped:
            return self

    with pytest.raises(KeyError, match=r"Unmapped\.anything"):
        crd.validator_forms(Unmapped)


def test_unions_without_a_structural_form_are_refused() -> None:
    with pytest.raises(crd.SchemaError, match=r"\.x"):
        crd.structural({"anyOf": [{"type": "object"}, {"type": "string"}]}, {}, ".x")
    with pytest.raises(crd.SchemaError, match="no type"):
        crd.structural({}, {}, ".y")
    assert crd.structural({"anyOf": [{"type": "integer"}, {"type": "string"}]}, {}) == {
        "x-kubernetes-int-or-string": True
    }


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_samples_are_valid(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert document["apiVersion"] == API_VERSION
    resource = load_resource(RESOURCES[document["kind"]], path)
    assert resource.model_dump(by_alias=True)["kind"] == document["kind"]


def test_one_sample_per_kind() -> None:
    kinds = sorted(yaml.safe_load(p.read_text())["kind"] for p in SAMPLES.glob("*.yaml"))
    assert kinds == sorted(RESOURCES)


def test_the_operator_rules_file_is_not_stale() -> None:
    from clinops_operator import rbac

    for copy in (ROOT / "manifests" / "operator", ROOT / "charts" / "clinops" / "files"):
        assert (copy / rbac.RULES_FILE).read_text() == rbac.rules_text(), f"{copy} is stale: run make crds"
    for crd_file in CRDS.glob("*.yaml"):
        shipped = ROOT / "charts" / "clinops-crds" / "crds" / crd_file.name
        assert shipped.read_text() == crd_file.read_text(), f"{shipped} is stale: run make crds"
    for rule in rbac.RULES:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
