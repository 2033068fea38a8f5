"""The ModelDeployment builders: names, labels, probes, security, optional children, spec file and status."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from clinops.specs.model_deployment import ModelDeploymentSpec
from clinops_operator.builders import model_deployment as build
from clinops_operator.builders.common import InvalidSpecError, name_problem, parse_spec
from clinops_operator.handlers.model_deployment import parse

CONFIG = build.ServingConfig(image="registry.local/clinops-platform:1", tracking_uri="http://mlflow:5000")
NAME = "readmission-risk"
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"
RECOMMENDED = {
    "app.kubernetes.io/name": "clinops-model-server",
    "app.kubernetes.io/instance": NAME,
    "app.kubernetes.io/component": "model-server",
    "app.kubernetes.io/part-of": "clinops",
    "app.kubernetes.io/managed-by": "clinops-operator",
}

SPECS: dict[str, dict[str, Any]] = {
    "alias": {"model": {"name": "readmission-risk", "alias": "champion"}, "replicas": 2},
    "pinned": {"model": {"name": "readmission-risk", "version": 3}, "replicas": 0},
    "autoscaled": {
        "model": {"name": "readmission-risk", "alias": "champion"},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 60},
    },
    "canary": {
        "model": {"name": "readmission-risk", "version": 3},
        "canary": {"version": 4, "trafficPercent": 10, "stickyKey": "encounter_id"},
        "predictionLog": {"topic": "predictions-v2", "sampleRate": 0.5},
    },
}


def spec(key: str) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(SPECS[key])


def children(key: str, *, service_monitors: bool = False) -> dict[str, dict[str, Any]]:
    built = build.children(name=NAME, spec=spec(key), config=CONFIG, service_monitors=service_monitors)
    return {child["kind"]: child for child in built}


@pytest.mark.parametrize("key", sorted(SPECS))
def test_every_child_is_named_after_the_parent_and_carries_the_recommended_labels(key: str) -> None:
    built = build.children(name=NAME, spec=spec(key), config=CONFIG, service_monitors=True)
    names = {child["kind"]: child["metadata"]["name"] for child in built}
    assert names.pop("ConfigMap") == f"{NAME}-spec"
    assert set(names.values()) == {NAME}
    assert len(built) == len({child["kind"] for child in built})
    for child in built:
        assert child["metadata"]["labels"] == RECOMMENDED
        assert "namespace" not in child["metadata"]  # kopf.adopt puts them beside their owner
    # Selectors never hold labels that may change, since a Deployment's selector is immutable.
    selector = built[1]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= RECOMMENDED.items()
    assert "app.kubernetes.io/managed-by" not in selector


@pytest.mark.parametrize(("key", "replicas"), [("alias", 2), ("pinned", 0), ("autoscaled", None), ("canary", 1)])
def test_replicas_are_the_specs_unless_an_hpa_owns_them(key: str, replicas: int | None) -> None:
    deployment = children(key)["Deployment"]
    assert deployment["spec"].get("replicas") == replicas


@pytest.mark.parametrize("key", sorted(SPECS))
def test_server_pod_is_probed_on_its_health_endpoints_and_is_pss_restricted(key: str) -> None:
    pod = children(key)["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    # A read-only root filesystem leaves /tmp as the only writable place, so HOME points there.
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["HOME"].startswith("/tmp")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    # The pod outlives the server's drain plus uvicorn's own graceful shutdown.
    assert pod["terminationGracePeriodSeconds"] >= spec(key).shutdown_grace_seconds + 30


def test_server_reads_the_whole_spec_from_its_mounted_file() -> None:
    built = children("canary")
    container = built["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["clinops"]
    assert container["args"][:3] == ["serve", "--file", f"{build.SPEC_DIR}/{build.SPEC_FILE}"]
    volumes = built["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "spec", "configMap": {"name": f"{NAME}-spec"}} in volumes
    document = yaml.safe_load(built["ConfigMap"]["data"][build.SPEC_FILE])
    assert document["kind"] == "ModelDeployment"
    assert document["metadata"] == {"name": NAME}
    # The server parses the same model, so canary and prediction-log settings reach it unchanged.
    assert ModelDeploymentSpec.model_validate(document["spec"]) == spec("canary")
    assert document["spec"]["canary"]["stickyKey"] == "encounter_id"
    assert document["spec"]["predictionLog"]["sampleRate"] == 0.5


def test_optional_environment_only_when_configured() -> None:
    plain = build.deployment(name=NAME, spec=spec("alias"), config=CONFIG)["spec"]["template"]["spec"]["containers"][0]
    assert {item["name"] for item in plain["env"]} == {"MLFLOW_TRACKING_URI", "HOME", "CLINOPS_HOME"}
    assert "envFrom" not in plain
    config = build.ServingConfig(
        image="i", tracking_uri="t", kafka_bootstrap="kafka:9092", lake="s3://clinops-lake", env_secret="s3-credentials"
    )
    full = build.deployment(name=NAME, spec=spec("alias"), config=config)["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in full["env"]}
    assert env["CLINOPS_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["CLINOPS_LAKE"] == "s3://clinops-lake"
    assert full["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]


@pytest.mark.parametrize("key", sorted(SPECS))
def test_hpa_only_with_autoscaling(key: str) -> None:
    built = children(key)
    scaling = spec(key).autoscaling
    absent = build.absent_children(name=NAME, spec=spec(key))
    if scaling is None:
        assert "HorizontalPodAutoscaler" not in built
        assert absent == [("autoscaling/v2", "HorizontalPodAutoscaler", NAME)]
        return
    hpa = built["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (scaling.min_replicas, scaling.max_replicas)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == scaling.target_cpu_utilization
    assert absent == []


@pytest.mark.parametrize("service_monitors", [True, False])
def test_service_monitor_only_when_available(service_monitors: bool) -> None:
    built = children("alias", service_monitors=service_monitors)
    assert ("ServiceMonitor" in built) is service_monitors
    if service_monitors:
        monitor = built["ServiceMonitor"]["spec"]
        assert monitor["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
        # A ServiceMonitor selects Services (not pods) by their labels.
        assert monitor["selector"]["matchLabels"].items() <= built["Service"]["metadata"]["labels"].items()


def test_service_and_pdb_select_the_server_pods() -> None:
    built = children("alias")
    pods = built["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        built["Service"]["spec"]["selector"],
        built["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pods.items()
    assert built["Service"]["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert built["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": built["Service"]["spec"]["selector"]},
    }


def deployment_state(
    *, desired: int, ready: int, updated: int, total: int, generation: int = 2, observed: int = 2
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "replicas": total,
        },
    }


def status_of(
    key: str,
    deployment: dict[str, Any] | None,
    *,
    generation: int = 1,
    previous: list[dict[str, Any]] | None = None,
    now: str = NOW,
) -> dict[str, Any]:
    return build.status(
        name=NAME,
        namespace="ml",
        spec=spec(key),
        config=CONFIG,
        deployment=deployment,
        observed_generation=generation,
        previous_conditions=previous or [],
        now=now,
    )


@pytest.mark.parametrize(
    ("deployment", "phase", "ready"),
    [
        (None, "Pending", 0),
        (deployment_state(desired=2, ready=0, updated=2, total=2), "Progressing", 0),
        (deployment_state(desired=2, ready=2, updated=1, total=3), "Progressing", 2),
        (deployment_state(desired=2, ready=2, updated=2, total=2, observed=1), "Progressing", 2),
        (deployment_state(desired=2, ready=2, updated=2, total=2), "Ready", 2),
        (deployment_state(desired=0, ready=0, updated=0, total=0), "Ready", 0),
    ],
)
def test_status_follows_the_rollout(deployment: dict[str, Any] | None, phase: str, ready: int) -> None:
    status = status_of("canary", deployment, generation=7)
    assert status["phase"] == phase
    assert status["readyReplicas"] == ready
    assert status["observedGeneration"] == 7
    assert status["url"] == f"http://{NAME}.ml.svc:8080"
    assert (status["servingVersion"], status["canaryVersion"]) == ("3", "4")
    (condition,) = status["conditions"]
    assert condition["type"] == "Ready"
    assert condition["status"] == ("True" if phase == "Ready" else "False")
    assert condition["observedGeneration"] == 7


@pytest.mark.parametrize(
    ("deployment", "observed"),
    [
        ({"metadata": {"generation": 1}}, False),  # as created: no status at all
        (deployment_state(desired=2, ready=2, updated=2, total=2, generation=3, observed=2), False),
        (deployment_state(desired=2, ready=0, updated=0, total=0, generation=3, observed=3), True),
        (deployment_state(desired=2, ready=2, updated=2, total=2, generation=3, observed=4), True),
    ],
)
def test_a_template_is_observed_once_the_controller_reports_its_generation(
    deployment: dict[str, Any], observed: bool
) -> None:
    assert build.template_observed(deployment) is observed


def test_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    def ready_condition(deployment: dict[str, Any], previous: list[dict[str, Any]]) -> dict[str, Any]:
        condition: dict[str, Any] = status_of("alias", deployment, previous=previous, now=LATER)["conditions"][0]
        return condition

    settled = deployment_state(desired=2, ready=2, updated=2, total=2)
    earlier = [{"type": "Ready", "status": "True", "reason": "ReplicasReady", "lastTransitionTime": NOW}]
    assert ready_condition(settled, earlier)["lastTransitionTime"] == NOW
    assert (
        ready_condition(deployment_state(desired=2, ready=1, updated=2, total=2), earlier)["lastTransitionTime"]
        == LATER
    )


def test_alias_leaves_the_serving_version_to_the_server() -> None:
    status = status_of("alias", None)
    assert status["servingVersion"] is None
    assert status["canaryVersion"] is None


def test_failed_status_names_the_problem() -> None:
    status = build.failed_status(problem="metadata.name: too long", generation=3, previous_conditions=[], now=NOW)
    assert status["phase"] == "Failed"
    assert {(c["type"], c["status"], c["reason"]) for c in status["conditions"]} == {
        ("Failed", "True", "InvalidSpec"),
        ("Ready", "False", "InvalidSpec"),
    }
    assert all(c["message"] == "metadata.name: too long" for c in status["conditions"])


@pytest.mark.parametrize(
    ("name", "spec_document", "field"),
    [
        ("2-risk", SPECS["alias"], "metadata.name"),
        ("risk.v2", SPECS["alias"], "metadata.name"),
        ("r" * 60, SPECS["alias"], "metadata.name"),
        (NAME, {"model": {"name": "readmission-risk"}}, "spec.model"),
        (NAME, {**SPECS["alias"], "replicas": "two"}, "spec.replicas"),
        (NAME, {**SPECS["canary"], "canary": {"version": 4, "trafficPercent": 150}}, "spec.canary.trafficPercent"),
        (NAME, {**SPECS["alias"], "surprise": True}, "spec.surprise"),
    ],
)
def test_parse_names_the_field_an_admitted_object_gets_wrong(
    name: str, spec_document: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidSpecError, match=f"^{re.escape(field)}: "):
        parse(name, spec_document)


def test_names_that_fit_every_child() -> None:
    assert name_problem("a" * 58, longest_suffix="-spec") is None
    assert name_problem("a" * 59, longest_suffix="-spec") is not None
    assert parse_spec(ModelDeploymentSpec, SPECS["alias"]) == spec("alias")
