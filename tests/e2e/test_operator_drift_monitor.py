"""The operator on the real control plane: a DriftMonitor becomes a FlinkDeployment, its windows status, and
persistent drift a retraining TrainingJob (real Kafka for the results, a real MLflow registry for the reference)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from clinops.stack.kafka import KafkaBroker
from clinops.stack.process import ManagedProcess
from tests.e2e import operator_process
from tests.e2e.kfp_fake import KfpFake
from tests.e2e.registry import INPUTS, Registry

pytestmark = [
    pytest.mark.e2e,
    # MLflow's SQL store uses a loader SQLAlchemy 2.1 deprecates: nothing of ours, nothing to act on.
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"),
]

ROOT = Path(__file__).parents[2]
GROUP, VERSION = "clinops.io", "v1alpha1"
SAMPLES = ROOT / "manifests" / "samples"
TIMEOUT_S = 60
# The FlinkDeployment API on Maven Central (operator 1.10) knows Flink versions up to 1.20.
BENCH_FLINK_VERSION = "v1_20"


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane, third_party_crds: list[str]) -> Iterator[client.ApiClient]:
    crds.install(control_plane, sorted((ROOT / "manifests" / "crds").glob("*.yaml")))
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"drift-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


class Cluster:
    """The test's view of one namespace: its clinops objects, their children and the FlinkDeployment's status."""

    def __init__(self, plane: ControlPlane, api: client.ApiClient, namespace: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def create(self, sample: str, plural: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = yaml.safe_load((SAMPLES / sample).read_text())
        body["metadata"]["name"] = name
        body["spec"].update(spec)
        return dict(self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body))

    def get(self, plural: str, name: str, group: str = GROUP, version: str = VERSION) -> dict[str, Any] | None:
        try:
            return dict(self.custom.get_namespaced_custom_object(group, version, self.namespace, plural, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def monitor(self, name: str) -> dict[str, Any]:
        found = self.get("driftmonitors", name)
        assert found is not None
        return found

    def flink(self, name: str) -> dict[str, Any] | None:
        return self.get("flinkdeployments", name, "flink.apache.org", "v1beta1")

    def set_job_state(self, name: str, state: str) -> None:
        # What the Flink Kubernetes Operator reports once the job runs (it cannot start JVMs on fake nodes).
        self.custom.patch_namespaced_custom_object_status(
            "flink.apache.org",
            "v1beta1",
            self.namespace,
            "flinkdeployments",
            name,
            {"status": {"jobStatus": {"state": state}}},
        )

    def wait(self, check: Any, what: str) -> Any:
        seen: list[Any] = []

        def holds() -> bool:
            seen.append(check())
            return bool(seen[-1])

        self.plane.wait_for(holds, what, TIMEOUT_S)
        return seen[-1]

    def status_when(self, name: str, check: Any, what: str) -> dict[str, Any]:
        def status() -> dict[str, Any] | None:
            current = self.monitor(name).get("status") or {}
            return current if check(current) else None

        found: dict[str, Any] = self.wait(status, f"{name}: {what}")
        return found

    def events(self, name: str) -> list[Any]:
        listed = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        return [event for event in listed.items if event.source and event.source.component == "clinops-operator"]


@pytest.fixture
def cluster(control_plane: ControlPlane, api: client.ApiClient, namespace: str) -> Cluster:
    return Cluster(control_plane, api, namespace)


def running_operator(
    plane: ControlPlane,
    namespace: str,
    *,
    tracking_uri: str,
    bootstrap: str,
    kfp: KfpFake | None = None,
    flink_version: str | None = BENCH_FLINK_VERSION,
) -> AbstractContextManager[ManagedProcess]:
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "CLINOPS_KAFKA_BOOTSTRAP": bootstrap,
        "CLINOPS_DRIFT_POLL_SECONDS": "0.5",
        "CLINOPS_DRIFT_RESOLVE_SECONDS": "1",
        "CLINOPS_TRAINING_POLL_SECONDS": "0.5",
        "CLINOPS_KFP_ENDPOINT": None if kfp is None else kfp.url,
        "CLINOPS_FLINK_VERSION": flink_version,
    }
    return operator_process.running_operator(plane.kubeconfig, namespace, plane.logs / f"operator-{namespace}.log", env)


class Results:
    """The drift job's side of the drift-results topic: one JSON record per window, keyed by the deployment."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.producer = Producer({"bootstrap.servers": broker.bootstrap})
        self.topic = topic
        broker.create_topics([topic], partitions=1)

    def window(self, deployment: str, hour: int, *, drifted: bool, share: float | None = None) -> None:
        record = {
            "window_start": f"2026-03-01T{hour:02d}:00:00Z",
            "window_end": f"2026-03-01T{hour:02d}:10:00Z",
            "rows": 1200,
            "numerical_test": "ks",
            "categorical_test": "chi2",
            "drift_share_threshold": 0.5,
            "drift_share": share if share is not None else (0.67 if drifted else 0.0),
            "drifted": drifted,
            "drifted_features": ["heart_rate", "lactate"] if drifted else [],
            "features": {},
        }
        self.send(deployment, json.dumps(record).encode())

    def send(self, deployment: str, value: bytes) -> None:
        self.producer.produce(self.topic, key=deployment.encode(), value=value)
        assert self.producer.flush(30) == 0


def _owned_by(child: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(ref["uid"] == owner["metadata"]["uid"] for ref in child["metadata"].get("ownerReferences") or [])


def test_windows_reach_status_and_persistent_drift_starts_one_retraining_then_the_alias_move_upgrades_the_job(
    cluster: Cluster, registry: Registry, kafka_broker: KafkaBroker, kfp_api: KfpFake
) -> None:
    version, profile = registry.register(seed=1)
    topic = f"drift-results-{uuid.uuid4().hex[:6]}"
    results = Results(kafka_broker, topic)
    deployment, name = "sepsis", "sepsis-drift"
    with running_operator(
        cluster.plane, cluster.namespace, tracking_uri=registry.uri, bootstrap=kafka_broker.bootstrap, kfp=kfp_api
    ):
        cluster.create(
            "model-deployment.yaml",
            "modeldeployments",
            deployment,
            {"model": {"name": registry.model, "alias": "champion"}},
        )
        cluster.create("training-job.yaml", "trainingjobs", "sepsis-weekly", {"schedule": "0 3 * * 1"})
        monitor = cluster.create(
            "drift-monitor.yaml",
            "driftmonitors",
            name,
            {
                "deployment": deployment,
                "persistence": 2,
                "source": {"kind": "kafka", "resultsTopic": topic},
                "action": {"retrain": {"trainingJobRef": {"name": "sepsis-weekly"}, "cooldown": "6h"}},
            },
        )

        # The job and the profile it mounts, owned by the monitor.
        job = cluster.wait(lambda: cluster.flink(f"{name}-drift"), "the FlinkDeployment")
        profile_map = cluster.core.read_namespaced_config_map(f"{name}-drift-profile", cluster.namespace)
        assert json.loads(profile_map.data["profile.json"]) == json.loads(json.dumps(profile))
        assert _owned_by(job, monitor)
        assert [owner.uid for owner in profile_map.metadata.owner_references] == [monitor["metadata"]["uid"]]
        spec = job["spec"]
        assert (spec["flinkVersion"], spec["job"]["upgradeMode"], spec["job"]["parallelism"]) == (
            BENCH_FLINK_VERSION,
            "savepoint",
            2,
        )
        assert spec["job"]["entryClass"] == "org.apache.flink.client.python.PythonDriver"
        arguments = spec["job"]["args"]
        assert arguments[:3] == ["-pym", "clinops.streaming.flink", "drift"]
        for expected in (
            "--profile=/opt/clinops/profile/profile.json",
            f"--deployment={deployment}",
            "--source=kafka",
            f"--bootstrap={kafka_broker.bootstrap}",
            f"--results-topic={topic}",
            f"--model={registry.model}",
            f"--model-version={version}",
            f"--features={','.join(INPUTS)}",
        ):
            assert expected in arguments
        assert (
            spec["flinkConfiguration"]["state.checkpoints.dir"]
            == f"s3://clinops-flink/checkpoints/{cluster.namespace}/{name}"
        )
        pod = spec["podTemplate"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["volumes"] == [{"name": "profile", "configMap": {"name": f"{name}-drift-profile"}}]

        status = cluster.status_when(name, lambda s: s.get("modelVersion") == version, "the reference version")
        assert (status["phase"], status["model"], status["flinkJob"]) == ("Pending", registry.model, f"{name}-drift")
        cluster.set_job_state(f"{name}-drift", "RUNNING")
        cluster.status_when(name, lambda s: s.get("jobState") == "RUNNING" and s["phase"] == "Running", "Running")

        # A stable window, garbage, another deployment's drifted window, then two drifted windows of ours.
        results.window(deployment, 0, drifted=False)
        results.send(deployment, b"not json {")
        results.window("another-deployment", 1, drifted=True)
        results.window(deployment, 1, drifted=True)
        status = cluster.status_when(
            name, lambda s: (s.get("lastWindow") or {}).get("end", "").startswith("2026-03-01T01"), "window 1"
        )
        assert (status["driftedWindows"], status["phase"]) == (1, "Running")
        assert status["lastWindow"]["driftedFeatures"] == ["heart_rate", "lactate"]
        results.window(deployment, 2, drifted=True)
        status = cluster.status_when(name, lambda s: s.get("retrainings") == 1, "a retraining")
        retraining = f"{name}-retrain-1"
        assert status["lastRetraining"]["name"] == retraining
        assert status["lastRetraining"]["windowEnd"] == "2026-03-01T02:10:00Z"
        assert (status["phase"], status["driftedWindows"]) == ("Retraining", 0)
        started = cluster.get("trainingjobs", retraining)
        assert started is not None
        assert _owned_by(started, monitor)
        source = cluster.get("trainingjobs", "sepsis-weekly")
        assert source is not None
        assert started["spec"] == {key: value for key, value in source["spec"].items() if key != "schedule"}
        (event,) = [event for event in cluster.events(name) if event.reason == "RetrainingStarted"]
        assert retraining in event.message

        # More drift while it trains starts nothing; a replayed old window changes nothing.
        results.window(deployment, 3, drifted=True)
        results.window(deployment, 4, drifted=True)
        results.window(deployment, 1, drifted=False)
        status = cluster.status_when(name, lambda s: s.get("driftedWindows") == 2, "two more drifted windows")
        assert (status["retrainings"], status["phase"]) == (1, "Retraining")
        due = {c["type"]: c for c in status["conditions"]}["RetrainingDue"]
        assert due["reason"] == "RetrainingActive"

        # The retraining's KFP run succeeds: drift persists, but the cooldown holds the next one back.
        run_id = cluster.wait(
            lambda: (cluster.get("trainingjobs", retraining) or {}).get("status", {}).get("runId"), "its KFP run"
        )
        kfp_api.set_state(run_id, "SUCCEEDED")
        status = cluster.status_when(name, lambda s: s.get("phase") == "Drifted", "drifted, in the cooldown")
        assert {c["type"]: c for c in status["conditions"]}["RetrainingDue"]["reason"] == "Cooldown"
        assert status["retrainings"] == 1
        assert [
            tj["metadata"]["name"]
            for tj in cluster.custom.list_namespaced_custom_object(GROUP, VERSION, cluster.namespace, "trainingjobs")[
                "items"
            ]
        ] == [retraining, "sepsis-weekly"]

        # The retraining promotes a new version: the job moves to its profile.
        new_version, new_profile = registry.register(seed=2)
        job = cluster.wait(
            lambda: (
                (found := cluster.flink(f"{name}-drift"))
                and f"--model-version={new_version}" in found["spec"]["job"]["args"]
                and found
            ),
            "the job on the new version",
        )
        profile_map = cluster.core.read_namespaced_config_map(f"{name}-drift-profile", cluster.namespace)
        assert json.loads(profile_map.data["profile.json"]) == json.loads(json.dumps(new_profile))
        cluster.status_when(name, lambda s: s.get("modelVersion") == new_version, "the new reference version")
        assert any(event.reason == "ReferenceUpdated" for event in cluster.events(name))

        # Deleting the monitor takes its job, profile and retraining with it (garbage collection).
        cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, cluster.namespace, "driftmonitors", name)
        cluster.wait(lambda: cluster.get("driftmonitors", name) is None, "the monitor deleted")
        cluster.wait(
            lambda: cluster.flink(f"{name}-drift") is None and cluster.get("trainingjobs", retraining) is None,
            "its children collected",
        )


def test_a_missing_deployment_waits_and_a_job_the_apiserver_refuses_fails_with_its_reason(
    cluster: Cluster, registry: Registry, kafka_broker: KafkaBroker
) -> None:
    registry.register(seed=3)
    # The operator's default Flink version is the stream env's (2.x), which the bench's FlinkDeployment API refuses.
    with running_operator(
        cluster.plane,
        cluster.namespace,
        tracking_uri=registry.uri,
        bootstrap=kafka_broker.bootstrap,
        flink_version=None,
    ):
        cluster.create("drift-monitor.yaml", "driftmonitors", "orphan", {"deployment": "not-there", "action": {}})
        status = cluster.status_when("orphan", lambda s: s.get("phase") == "Pending", "waiting")
        ready = {c["type"]: c for c in status["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "DeploymentNotFound")
        assert "not-there" in ready["message"]

        cluster.create(
            "model-deployment.yaml",
            "modeldeployments",
            "served",
            {"model": {"name": registry.model, "alias": "champion"}},
        )
        cluster.create("drift-monitor.yaml", "driftmonitors", "refused", {"deployment": "served", "action": {}})
        status = cluster.status_when("refused", lambda s: s.get("phase") == "Failed", "failed")
        failed = {c["type"]: c for c in status["conditions"]}["Failed"]
        assert failed["reason"] == "ChildRejected"
        assert "flinkVersion" in failed["message"]
        assert cluster.flink("refused-drift") is None
