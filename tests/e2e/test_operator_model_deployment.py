"""The operator on the real control plane: a ModelDeployment becomes a Ready server, follows updates and cascades."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from clinops.stack.process import ManagedProcess
from tests.e2e.operator_process import running_operator

CRD = Path(__file__).parents[2] / "manifests" / "crds" / "clinops.io_modeldeployments.yaml"
GROUP, VERSION, PLURAL = "clinops.io", "v1alpha1", "modeldeployments"
TIMEOUT_S = 60
MODEL = {"name": "readmission-risk", "version": 3}


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane, api: client.ApiClient) -> Iterator[str]:
    name = f"serving-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods need the namespace's default ServiceAccount, which the controller-manager creates a moment later.
    control_plane.wait_for(lambda: _exists(lambda: core.read_namespaced_service_account("default", name)), "SA")
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, third_party_crds: list[str], namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    """The operator watching the test namespace, with the ModelDeployment and ServiceMonitor CRDs."""
    crds.install(control_plane, [CRD])
    env = {"CLINOPS_SERVING_IMAGE": "clinops-platform:e2e", "MLFLOW_TRACKING_URI": "http://mlflow.clinops.svc:5000"}
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    # The only failure expected is the unservable name's, which is permanent and leaves no traceback.
    with running_operator(control_plane.kubeconfig, namespace, log, env) as process:
        yield process


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": MODEL, **spec},
    }


class Cluster:
    """The test's view of one namespace: the custom objects and the children the operator makes."""

    def __init__(self, plane: ControlPlane, api: client.ApiClient, namespace: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        return found

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )
        return patched

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get(name).get("status") or {}
        return status

    def wait(self, ready: Callable[[], bool], what: str) -> None:
        self.plane.wait_for(ready, what, TIMEOUT_S)

    def wait_status(self, name: str, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        self.wait(lambda: check(self.status(name)), f"{name}: {what}")
        return self.status(name)

    def selector(self, name: str) -> str:
        return f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=clinops-operator"

    def children(self, name: str) -> dict[str, list[Any]]:
        """Every object of each kind the operator writes that carries this parent's labels."""
        selector = self.selector(name)
        ns = self.namespace
        monitors = self.custom.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", ns, "servicemonitors", label_selector=selector
        )
        return {
            "Deployment": self.apps.list_namespaced_deployment(ns, label_selector=selector).items,
            "Service": self.core.list_namespaced_service(ns, label_selector=selector).items,
            "ConfigMap": self.core.list_namespaced_config_map(ns, label_selector=selector).items,
            "PodDisruptionBudget": self.policy.list_namespaced_pod_disruption_budget(ns, label_selector=selector).items,
            "HorizontalPodAutoscaler": self.autoscaling.list_namespaced_horizontal_pod_autoscaler(
                ns, label_selector=selector
            ).items,
            "ServiceMonitor": monitors["items"],
        }

    def deployment(self, name: str) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(name, self.namespace)


@pytest.fixture
def cluster(control_plane: ControlPlane, api: client.ApiClient, namespace: str, operator: ManagedProcess) -> Cluster:
    return Cluster(control_plane, api, namespace)


def _owner_uid(child: Any) -> str:
    references = child["metadata"]["ownerReferences"] if isinstance(child, dict) else child.metadata.owner_references
    (reference,) = references
    kind = reference["kind"] if isinstance(reference, dict) else reference.kind
    controller = reference["controller"] if isinstance(reference, dict) else reference.controller
    uid = reference["uid"] if isinstance(reference, dict) else reference.uid
    assert (kind, controller) == ("ModelDeployment", True)
    return str(uid)


def _ready(replicas: int) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status.get("phase") == "Ready" and status.get("readyReplicas") == replicas


def test_a_model_deployment_becomes_a_ready_server(cluster: Cluster) -> None:
    name = "readmission-risk"
    canary = {"version": 4, "trafficPercent": 10}
    created = cluster.create(model_deployment(name, replicas=2, canary=canary))

    status = cluster.wait_status(name, _ready(2), "Ready with 2 replicas")
    assert status["observedGeneration"] == created["metadata"]["generation"]
    assert status["url"] == f"http://{name}.{cluster.namespace}.svc:8080"
    assert (status["servingVersion"], status["canaryVersion"]) == ("3", "4")
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == ("Ready", "True", "ReplicasReady")

    children = cluster.children(name)
    assert {kind: len(items) for kind, items in children.items()} == {
        "Deployment": 1,
        "Service": 1,
        "ConfigMap": 1,
        "PodDisruptionBudget": 1,
        "HorizontalPodAutoscaler": 0,
        "ServiceMonitor": 1,
    }
    uid = created["metadata"]["uid"]
    assert all(_owner_uid(child) == uid for items in children.values() for child in items)

    deployment = cluster.deployment(name)
    assert deployment.spec.replicas == 2
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "clinops-platform:e2e"
    assert container.readiness_probe.http_get.path == "/health/ready"
    assert container.liveness_probe.http_get.path == "/health/live"
    assert container.security_context.read_only_root_filesystem is True
    assert {e.name: e.value for e in container.env}["MLFLOW_TRACKING_URI"] == "http://mlflow.clinops.svc:5000"
    (service,) = children["Service"]
    assert service.spec.selector.items() <= deployment.spec.template.metadata.labels.items()
    (config_map,) = children["ConfigMap"]
    assert "trafficPercent: 10" in config_map.data["modeldeployment.yaml"]
    # No finalizer: nothing outside the cluster needs cleaning up, so deletion is never held up by the operator.
    assert not cluster.get(name)["metadata"].get("finalizers")


def test_an_update_patches_the_children_in_place(cluster: Cluster) -> None:
    name = "sepsis-alert"
    cluster.create(model_deployment(name, replicas=1))
    cluster.wait_status(name, _ready(1), "Ready with 1 replica")
    before = cluster.deployment(name)

    patched = cluster.patch(name, {"replicas": 3, "canary": {"version": 5, "trafficPercent": 20}})
    status = cluster.wait_status(
        name,
        lambda s: _ready(3)(s) and s.get("observedGeneration") == patched["metadata"]["generation"],
        "Ready with 3 replicas at the new generation",
    )
    assert status["canaryVersion"] == "5"
    after = cluster.deployment(name)
    assert after.metadata.uid == before.metadata.uid
    assert after.spec.replicas == 3
    children = cluster.children(name)
    assert len(children["Deployment"]) == len(children["Service"]) == len(children["ConfigMap"]) == 1
    assert "trafficPercent: 20" in children["ConfigMap"][0].data["modeldeployment.yaml"]


def test_autoscaling_owns_the_replicas_and_leaves_with_it(cluster: Cluster) -> None:
    name = "los-forecast"
    cluster.create(model_deployment(name, autoscaling={"minReplicas": 2, "maxReplicas": 5}))
    cluster.wait(lambda: len(cluster.children(name)["HorizontalPodAutoscaler"]) == 1, "the HPA")
    (hpa,) = cluster.children(name)["HorizontalPodAutoscaler"]
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 5)
    assert hpa.spec.scale_target_ref.name == name
    cluster.wait_status(name, lambda s: s.get("phase") in ("Ready", "Progressing"), "a rollout status")

    cluster.patch(name, {"autoscaling": None, "replicas": 2})
    cluster.wait(lambda: not cluster.children(name)["HorizontalPodAutoscaler"], "the HPA deleted")
    cluster.wait_status(name, _ready(2), "Ready with 2 fixed replicas")
    assert cluster.deployment(name).spec.replicas == 2


def test_deleting_cascades_to_every_child(cluster: Cluster) -> None:
    name = "doomed"
    cluster.create(model_deployment(name, replicas=1))
    cluster.wait_status(name, _ready(1), "Ready")
    assert cluster.children(name)["Deployment"]

    cluster.delete(name)
    cluster.wait(lambda: not _exists(lambda: cluster.get(name)), "the ModelDeployment gone")
    # The controller-manager's garbage collector removes what the owner references tie to the deleted parent.
    cluster.wait(lambda: not any(cluster.children(name).values()), "every child garbage-collected")


def test_an_admitted_but_unservable_object_fails_naming_the_field(cluster: Cluster) -> None:
    # A valid object name (a DNS subdomain), but no valid Service name (an RFC 1035 label starts with a letter).
    name = "7day-readmission"
    cluster.create(model_deployment(name, replicas=1))
    status = cluster.wait_status(name, lambda s: s.get("phase") == "Failed", "Failed")
    failed = {c["type"]: c for c in status["conditions"]}
    assert failed["Failed"]["status"] == "True"
    assert failed["Failed"]["reason"] == "InvalidSpec"
    assert failed["Failed"]["message"].startswith("metadata.name: ")
    assert failed["Ready"]["status"] == "False"
    assert not any(cluster.children(name).values())
    cluster.delete(name)
    cluster.wait(lambda: not _exists(lambda: cluster.get(name)), "the failed ModelDeployment deleted")
