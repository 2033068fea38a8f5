"""Each documented values scenario of the clinops chart, rendered as helm install would on a cluster with Strimzi,
the Flink operator and prometheus-operator, then admitted object by object by the real apiserver (server-side dry
run, strict field validation, the restricted Pod Security Standard with its warnings as errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from clinops.stack.controlplane import ControlPlane
from tests.e2e.chart import ALERTS, MONITORING_KINDS, SCENARIOS, STRIMZI_KINDS, kinds, of_kind, one, render
from tests.e2e.helm import Helm, restricted_namespace

pytestmark = pytest.mark.e2e

# The defaults are the dev scenario; every file under scenarios/ is one more, whoever adds it.
CASES = [None, *sorted(SCENARIOS.glob("*.yaml"))]


def case_id(values: Path | None) -> str:
    return "defaults" if values is None else values.stem


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane, chart_crds: list[str]) -> Iterator[str]:
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api:
        name = restricted_namespace(api)
        try:
            yield name
        finally:
            client.CoreV1Api(api).delete_namespace(name)


def test_the_documented_scenarios_are_all_there() -> None:
    assert {"prod", "no-prometheus-operator"} <= {path.stem for path in CASES if path is not None}


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_every_rendered_object_is_admitted_by_the_apiserver(
    helm: Helm, control_plane: ControlPlane, namespace: str, values: Path | None, tmp_path: Path
) -> None:
    documents = render(helm, values=values, namespace=namespace)
    assert {"Deployment", "Kafka", "KafkaNodePool", "KafkaTopic"} <= kinds(documents)
    manifest = tmp_path / "rendered.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    # Server-side: the apiserver validates each object against its (CRD) schema and runs admission, stores none.
    # Pod Security admission only warns about a Deployment's pod template, hence warnings as errors.
    done = control_plane.kubectl(
        "apply",
        "--warnings-as-errors",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        str(manifest),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    applied = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(documents), done.stdout


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_without_the_third_party_apis_the_chart_renders_none_of_their_kinds(helm: Helm, values: Path | None) -> None:
    documents = render(helm, values=values, apis=[])
    assert not kinds(documents) & (MONITORING_KINDS | STRIMZI_KINDS)
    assert one(documents, "Deployment", "clinops-operator")


def test_no_prometheus_operator_runs_its_own_prometheus_and_grafana_and_no_monitors(helm: Helm) -> None:
    # Even where the cluster offers the monitoring.coreos.com kinds, the scenario turns them off.
    documents = render(helm, values=SCENARIOS / "no-prometheus-operator.yaml")
    assert not kinds(documents) & MONITORING_KINDS
    deployments = {d["metadata"]["name"] for d in of_kind(documents, "Deployment")}
    assert deployments == {"clinops-operator", "clinops-mlflow", "clinops-prometheus", "clinops-grafana"}
    rules = one(documents, "ConfigMap", "clinops-prometheus")["data"]["alerts.yaml"]
    assert ALERTS.read_text().strip() == rules.strip()
