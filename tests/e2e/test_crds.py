"""The generated CRDs on a real apiserver: Established, samples admitted, hostile input refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from clinops.stack.process import StackError

ROOT = Path(__file__).parents[2]
CRDS = ROOT / "manifests" / "crds"
SAMPLES = ROOT / "manifests" / "samples"
NAMESPACE = "default"


@pytest.fixture(scope="module")
def clinops_crds(control_plane: ControlPlane) -> list[str]:
    return crds.install(control_plane, sorted(CRDS.glob("*.yaml")))


def resource(kind: str, spec: dict[str, Any], name: str = "hostile") -> dict[str, Any]:
    return {"apiVersion": "clinops.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def deployment(**spec: Any) -> dict[str, Any]:
    return resource("ModelDeployment", {"model": {"name": "m", "alias": "champion"}, **spec})


def training(**spec: Any) -> dict[str, Any]:
    base = {"model": {"name": "m"}, "dataset": {"uri": "lake://gold/encounters/", "target": "readmitted_30d"}}
    return resource("TrainingJob", {**base, **spec})


def monitor(**spec: Any) -> dict[str, Any]:
    return resource("DriftMonitor", {"deployment": "readmission-risk", **spec})


def create(plane: ControlPlane, document: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "resource.json"
    path.write_text(json.dumps(document))
    # Server-side dry run: the apiserver runs defaulting, schema, CEL and strict field validation, stores nothing.
    result = plane.kubectl("create", "-n", NAMESPACE, "--dry-run=server", "-f", str(path), check=False)
    return result.returncode, result.stderr


def test_clinops_crds_are_established(control_plane: ControlPlane, clinops_crds: list[str]) -> None:
    assert sorted(clinops_crds) == [
        "driftmonitors.clinops.io",
        "modeldeployments.clinops.io",
        "trainingjobs.clinops.io",
    ]
    resources = control_plane.request("GET", "/apis/clinops.io/v1alpha1")["resources"]
    short = {r["kind"]: r.get("shortNames") for r in resources if "/" not in r["name"]}
    assert short == {"TrainingJob": ["tj"], "ModelDeployment": ["md"], "DriftMonitor": ["dm"]}
    assert {r["name"] for r in resources} >= {f"{p.split('.')[0]}/status" for p in clinops_crds}
    # Discovery (which resolves the category) follows Established by a moment.
    control_plane.wait_for(
        lambda: control_plane.kubectl("get", "clinops", "-n", NAMESPACE, check=False).returncode == 0,
        "the clinops category in discovery",
        30,
    )


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_samples_are_admitted_with_defaults(control_plane: ControlPlane, clinops_crds: list[str], sample: Path) -> None:
    document = yaml.safe_load(sample.read_text())
    control_plane.kubectl("apply", "--server-side", "-n", NAMESPACE, "-f", str(sample))
    kind = document["kind"].lower()
    name = document["metadata"]["name"]
    try:
        stored = json.loads(control_plane.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json").stdout)
        # Defaults the sample leaves out are filled in by the apiserver from the models' defaults.
        if kind == "trainingjob":
            assert stored["spec"]["tuning"]["search"] == "tpe"
            assert stored["spec"]["dataset"]["groupBy"] == "patient_id"
        elif kind == "modeldeployment":
            assert stored["spec"]["predictionLog"]["bufferSize"] == 10000
        else:
            assert stored["spec"]["flink"]["config"] == {}
            assert stored["spec"]["statistics"]["numerical"] == {"test": "ks"}
        for key, value in document["spec"].items():
            assert key in stored["spec"], key
            if not isinstance(value, dict):
                assert stored["spec"][key] == value
        table = control_plane.kubectl("get", kind, name, "-n", NAMESPACE).stdout.splitlines()[0].split()
        assert table[:2] == ["NAME", "PHASE"]
        assert table[-1] == "AGE"
    finally:
        control_plane.kubectl("delete", kind, name, "-n", NAMESPACE, "--wait=false")


def test_status_subresource_accepts_a_status(control_plane: ControlPlane, clinops_crds: list[str]) -> None:
    path = f"/apis/clinops.io/v1alpha1/namespaces/{NAMESPACE}/driftmonitors"
    created = control_plane.request("POST", path, monitor())
    try:
        created["status"] = {
            "phase": "Running",
            "driftedWindows": 0,
            "lastWindow": {"end": "2026-01-01T00:10:00Z", "driftShare": 0.0, "drifted": False},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "JobRunning",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
        updated = control_plane.request("PUT", f"{path}/hostile/status", created)
        assert updated["status"]["phase"] == "Running"
        assert updated["metadata"]["generation"] == created["metadata"]["generation"]
        with pytest.raises(StackError, match=r"status\.phase"):
            control_plane.request("PUT", f"{path}/hostile/status", {**updated, "status": {"phase": "Exploded"}})
    finally:
        control_plane.request("DELETE", f"{path}/hostile")


HOSTILE = [
    pytest.param(deployment(replicas="two"), "spec.replicas", id="wrong-type"),
    pytest.param(resource("ModelDeployment", {"replicas": 2}), "spec.model", id="missing-model"),
    pytest.param(training(dataset={"uri": "lake://gold/x/"}), "spec.dataset.target", id="missing-target"),
    pytest.param(
        deployment(canary={"alias": "challenger", "trafficPercent": 150}),
        "spec.canary.trafficPercent",
        id="traffic-150",
    ),
    pytest.param(
        deployment(canary={"alias": "challenger", "trafficPercent": -1}),
        "spec.canary.trafficPercent",
        id="traffic-negative",
    ),
    pytest.param(training(algorithms=["deep_magic"]), "spec.algorithms[0]", id="unknown-algorithm"),
    pytest.param(training(algorithms=["xgboost", "xgboost"]), "spec.algorithms[1]", id="repeated-algorithm"),
    pytest.param(training(dataset={"uri": "x" * 1_000_000, "target": "y"}), "spec.dataset.uri", id="1MB-string"),
    pytest.param(monitor(flink={"image": "x" * 1_000_000}), "spec.flink.image", id="1MB-image"),
    pytest.param(
        resource("ModelDeployment", {"model": {"name": "m", "alias": "champion", "version": 3}}),
        "spec.model",
        id="alias-and-version",
    ),
    pytest.param(resource("ModelDeployment", {"model": {"name": "m"}}), "spec.model", id="neither-alias-nor-version"),
    pytest.param(deployment(canary={"alias": "champion", "trafficPercent": 5}), "spec.canary", id="canary-is-model"),
    pytest.param(
        deployment(canary={"alias": "c", "trafficPercent": 5, "stickyKey": "features"}),
        "spec.canary.stickyKey",
        id="sticky-key-body",
    ),
    pytest.param(
        deployment(autoscaling={"minReplicas": 5, "maxReplicas": 2}), "spec.autoscaling.minReplicas", id="min-over-max"
    ),
    pytest.param(training(schedule="every sunday"), "spec.schedule", id="cron"),
    pytest.param(training(promotion={"gates": {"f1": 0.5}}), "spec.promotion.gates", id="unknown-gate"),
    pytest.param(
        training(tuning={"searchSpace": {"random_forest": {"max_depth": {"type": "int", "low": 2, "high": 4}}}}),
        "spec.tuning.searchSpace",
        id="search-space-unused",
    ),
    pytest.param(
        training(tuning={"searchSpace": {"xgboost": {"eta": {"type": "loguniform", "low": 0, "high": 1}}}}),
        "spec.tuning.searchSpace[xgboost][eta].low",
        id="loguniform-zero",
    ),
    pytest.param(deployment(bogus=1), "spec.bogus", id="unknown-field"),
    pytest.param(monitor(window={"seconds": 0}), "spec.window.seconds", id="window-zero"),
    pytest.param(
        monitor(statistics={"numerical": {"test": "chi2"}}), "spec.statistics.numerical.test", id="wrong-test"
    ),
    pytest.param(
        monitor(statistics={"numerical": {"threshold": 0.1}}),
        "spec.statistics.numerical.threshold",
        id="one-threshold",
    ),
    pytest.param(monitor(action={"retrain": {"cooldown": "6h"}}), "spec.action.retrain", id="retrain-nothing"),
    pytest.param(
        monitor(action={"retrain": {"trainingJobRef": {"name": "a"}, "cooldown": "soon"}}),
        "spec.action.retrain.cooldown",
        id="cooldown",
    ),
    pytest.param(monitor(deployment="Not_A_Name"), "spec.deployment", id="deployment-name"),
]


@pytest.mark.parametrize(("document", "field"), HOSTILE)
def test_hostile_input_is_rejected_naming_the_field(
    control_plane: ControlPlane, clinops_crds: list[str], tmp_path: Path, document: dict[str, Any], field: str
) -> None:
    code, message = create(control_plane, document, tmp_path)
    assert code != 0, f"admitted: {json.dumps(document)[:300]}"
    assert f"{field}:" in message or f'"{field}"' in message, message[:1000]


def test_third_party_crds_are_established(control_plane: ControlPlane, third_party_crds: list[str]) -> None:
    assert sorted(third_party_crds) == [
        "flinkdeployments.flink.apache.org",
        "prometheusrules.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
    ]
    assert all(crds.established(control_plane, name) for name in third_party_crds)
    versions = {}
    for name in third_party_crds:
        crd = control_plane.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        versions[name] = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert "v1beta1" in versions["flinkdeployments.flink.apache.org"]
    assert "v1" in versions["servicemonitors.monitoring.coreos.com"]
