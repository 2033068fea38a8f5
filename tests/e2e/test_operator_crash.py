"""SIGKILL the operator, under its own Role, often while 30 resources reconcile: all converge, none doubles."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, utils

from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from clinops.stack.kafka import KafkaBroker
from clinops.stack.process import ManagedProcess, log_tail, poll_until
from clinops_operator import rbac
from tests.e2e.kfp_fake import KfpFake
from tests.e2e.operator_process import operator_process
from tests.e2e.registry import Registry

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"),
]

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "manifests" / "samples"
GROUP, VERSION = "clinops.io", "v1alpha1"
PER_KIND = 10
KILLS = 10
CONVERGE_TIMEOUT_S = 240
KINDS = {
    "modeldeployments": "model-deployment.yaml",
    "trainingjobs": "training-job.yaml",
    "driftmonitors": "drift-monitor.yaml",
}


@pytest.fixture
def namespace(control_plane: ControlPlane, third_party_crds: list[str]) -> Iterator[tuple[str, client.ApiClient]]:
    crds.install(control_plane, sorted((ROOT / "manifests" / "crds").glob("*.yaml")))
    name = f"crash-{uuid.uuid4().hex[:6]}"
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        yield name, api
        core.delete_namespace(name)


def service_account_kubeconfig(plane: ControlPlane, api: client.ApiClient, namespace: str, path: Path) -> Path:
    """The operator's own ServiceAccount and Role in ``namespace``, and a kubeconfig with a token for it."""
    for manifest in rbac.manifests(namespace):
        utils.create_from_dict(api, manifest)
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=7200))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(rbac.SERVICE_ACCOUNT, namespace, request)
    return plane.write_kubeconfig(path, rbac.SERVICE_ACCOUNT, token.status.token)


def crashable_operator(
    kubeconfig: Path, namespace: str, log: Path, *, kfp: KfpFake, registry: Registry, broker: KafkaBroker
) -> ManagedProcess:
    env = {
        "CLINOPS_KFP_ENDPOINT": kfp.url,
        "MLFLOW_TRACKING_URI": registry.uri,
        "CLINOPS_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CLINOPS_FLINK_VERSION": "v1_20",
        "CLINOPS_TRAINING_POLL_SECONDS": "1",
        "CLINOPS_DRIFT_POLL_SECONDS": "1",
    }
    return operator_process(kubeconfig, namespace, log, env)


def _spec(plural: str, index: int, model: str) -> dict[str, Any]:
    if plural == "modeldeployments":
        return {"model": {"name": model, "alias": "champion"}}
    if plural == "driftmonitors":
        return {"deployment": f"md-{index}", "action": {}}
    return {}


def test_ten_crashes_while_thirty_resources_reconcile_leave_each_converged_and_nothing_doubled(
    control_plane: ControlPlane,
    namespace: tuple[str, client.ApiClient],
    kfp_api: KfpFake,
    registry: Registry,
    kafka_broker: KafkaBroker,
    tmp_path: Path,
) -> None:
    name, api = namespace
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    registry.register(seed=7)
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    # Under its own least-privilege Role: a permission it lacks shows up as a resource that never converges.
    kubeconfig = service_account_kubeconfig(control_plane, api, name, tmp_path / "operator.kubeconfig")
    operator = crashable_operator(
        kubeconfig, name, tmp_path / "operator.log", kfp=kfp_api, registry=registry, broker=kafka_broker
    )
    prefixes = {"modeldeployments": "md", "trainingjobs": "tj", "driftmonitors": "dm"}
    for plural, sample in KINDS.items():
        for index in range(PER_KIND):
            body = yaml.safe_load((SAMPLES / sample).read_text())
            body["metadata"]["name"] = f"{prefixes[plural]}-{index}"
            body["spec"].update(_spec(plural, index, registry.model))
            custom.create_namespaced_custom_object(GROUP, VERSION, name, plural, body)

    try:
        for crash in range(KILLS):
            operator.start()
            # Killed anywhere from its imports to the middle of a burst of handlers.
            _sleep_while_running(operator, chance.uniform(0.5, 6.0))
            if crash == KILLS // 2:
                # Specs change between crashes: the new generation must win, the old one's run must not repeat.
                for index in range(0, PER_KIND, 3):
                    custom.patch_namespaced_custom_object(
                        GROUP, VERSION, name, "trainingjobs", f"tj-{index}", {"spec": {"tuning": {"trials": 3}}}
                    )
                    custom.patch_namespaced_custom_object(
                        GROUP, VERSION, name, "modeldeployments", f"md-{index}", {"spec": {"replicas": 2}}
                    )
            operator.kill()
        operator.start()

        def laggards() -> list[str]:
            behind = []
            for plural in KINDS:
                for item in custom.list_namespaced_custom_object(GROUP, VERSION, name, plural)["items"]:
                    status = item.get("status") or {}
                    done = (
                        status.get("observedGeneration") == item["metadata"]["generation"]
                        and {
                            "modeldeployments": status.get("phase") == "Ready",
                            "trainingjobs": bool(status.get("runId")),
                            "driftmonitors": bool(status.get("modelVersion")),
                        }[plural]
                    )
                    if not done:
                        metadata = item["metadata"]
                        behind.append(f"{plural}/{metadata['name']} g{metadata['generation']}: {status}")
            return behind

        if not poll_until(lambda: not laggards(), CONVERGE_TIMEOUT_S):
            rollouts = [
                f"{d.metadata.name}: {d.status.ready_replicas}" for d in apps.list_namespaced_deployment(name).items
            ]
            pytest.fail(
                f"not converged (seed {seed}):\n" + "\n".join([*laggards(), *rollouts]) + f"\n{log_tail(operator.log)}"
            )
    finally:
        operator.stop()
    assert "Forbidden" not in operator.log.read_text()

    deployments = Counter(item.metadata.name for item in apps.list_namespaced_deployment(name).items)
    assert deployments == Counter(f"md-{index}" for index in range(PER_KIND))
    flink = custom.list_namespaced_custom_object("flink.apache.org", "v1beta1", name, "flinkdeployments")["items"]
    assert sorted(item["metadata"]["name"] for item in flink) == sorted(f"dm-{i}-drift" for i in range(PER_KIND))
    for index in range(0, PER_KIND, 3):
        md = custom.get_namespaced_custom_object(GROUP, VERSION, name, "modeldeployments", f"md-{index}")
        assert md["status"]["readyReplicas"] == 2
    # One KFP run per generation a reconcile saw, never two of the same name.
    names = Counter(run["display_name"] for run in kfp_api.runs.values() if run["display_name"].startswith(f"{name}-"))
    assert names
    assert max(names.values()) == 1, names
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, name, "trainingjobs")["items"]:
        metadata = item["metadata"]
        current = f"{name}-{metadata['name']}-{metadata['uid'][:8]}-g{metadata['generation']}"
        assert names[current] == 1
        assert kfp_api.runs[item["status"]["runId"]]["display_name"] == current
    experiments = Counter(experiment["display_name"] for experiment in kfp_api.experiments.values())
    assert experiments[f"clinops-{name}"] == 1


def _sleep_while_running(process: ManagedProcess, seconds: float) -> None:
    """Let the operator work for ``seconds``; fail early if it dies on its own (a crash we did not cause)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.running, f"the operator exited by itself:\n{process.log.read_text()[-3000:]}"
        time.sleep(0.1)
