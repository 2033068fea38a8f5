"""The bench control plane: its version, RBAC, Deployments with Ready pods on kwok nodes, garbage collection, helm."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from clinops.stack.controlplane import POD_CIDR, ControlPlane, pinned_versions

NAMESPACE = "default"


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api_client:
        yield api_client


def _token_client(control_plane: ControlPlane, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = control_plane.server
    configuration.ssl_ca_cert = str(control_plane.ca_file)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def test_apiserver_reports_the_pinned_version(control_plane: ControlPlane) -> None:
    version = control_plane.request("GET", "/version")
    pinned = pinned_versions()["KUBERNETES_VERSION"]
    assert version["gitVersion"] == pinned
    assert (version["major"], version["minor"]) == tuple(pinned.removeprefix("v").split(".")[:2])
    assert version["gitTreeState"] == "clean"
    reported = json.loads(control_plane.kubectl("version", "--output=json").stdout)
    assert reported["clientVersion"]["gitVersion"] == reported["serverVersion"]["gitVersion"] == pinned


def test_rbac_forbids_what_no_role_grants(control_plane: ControlPlane, api: client.ApiClient) -> None:
    name = f"reader-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = core.create_namespaced_service_account_token(name, NAMESPACE, request).status.token
    rbac = client.RbacAuthorizationV1Api(api)
    rule = client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])
    rbac.create_namespaced_role(NAMESPACE, client.V1Role(metadata=client.V1ObjectMeta(name=name), rules=[rule]))
    subject = client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=NAMESPACE)
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=name),
        subjects=[subject],
    )
    rbac.create_namespaced_role_binding(NAMESPACE, binding)

    with _token_client(control_plane, token) as as_reader:
        reader = client.CoreV1Api(as_reader)
        with pytest.raises(ApiException) as denied:
            reader.list_namespaced_secret(NAMESPACE)
        # 403, not 401: the ServiceAccount's token is accepted and RBAC is what says no.
        assert denied.value.status == 403
        assert f"system:serviceaccount:{NAMESPACE}:{name}" in str(denied.value.body)

        def pods_listable() -> bool:
            try:
                reader.list_namespaced_pod(NAMESPACE)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                return False
            return True

        # The RBAC authorizer reads bindings through an informer, so a new one takes effect a moment later.
        control_plane.wait_for(pods_listable, "pods listable through the new RoleBinding", timeout=30)


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app.kubernetes.io/name": name}
    container = client.V1Container(name="main", image="registry.invalid/clinops/bench:1")
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(containers=[container])
            ),
        ),
    )


def test_deployment_gets_ready_pods_on_kwok_nodes_and_is_garbage_collected(
    control_plane: ControlPlane, api: client.ApiClient
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    name = f"bench-{uuid.uuid4().hex[:6]}"
    selector = f"app.kubernetes.io/name={name}"
    apps.create_namespaced_deployment(NAMESPACE, _deployment(name, replicas=2))

    control_plane.wait_for(
        lambda: (apps.read_namespaced_deployment_status(name, NAMESPACE).status.ready_replicas or 0) == 2,
        f"2 ready replicas of Deployment {name}",
    )
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.node_name in control_plane.node_names
        assert pod.status.phase == "Running"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(POD_CIDR)
    (replica_set,) = apps.list_namespaced_replica_set(NAMESPACE, label_selector=selector).items
    assert replica_set.metadata.owner_references[0].name == name

    apps.delete_namespaced_deployment(name, NAMESPACE, propagation_policy="Background")

    def collected() -> bool:
        return not (
            apps.list_namespaced_replica_set(NAMESPACE, label_selector=selector).items
            or core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        )

    control_plane.wait_for(collected, f"ReplicaSet and pods of Deployment {name} garbage-collected")


def test_helm_runs_against_the_cluster(control_plane: ControlPlane) -> None:
    helm = str(control_plane.binary("helm"))
    version = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(pinned_versions()["HELM_VERSION"])
    releases = subprocess.run(
        [helm, "list", "--all-namespaces", "--output=json", f"--kubeconfig={control_plane.kubeconfig}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(releases.stdout) == []
