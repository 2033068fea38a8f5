"""The Helm charts on the real control plane with the bench's helm: lint, strict values, two namespaces under the
restricted Pod Security Standard, upgrade and uninstall."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from clinops_operator import rbac
from tests.e2e.chart import RELEASE, one, pod_spec, refused, render
from tests.e2e.helm import CHART, CRDS_CHART, Helm, restricted_namespace
from tests.e2e.volumes import local_volumes

pytestmark = pytest.mark.e2e


def test_both_charts_lint_strictly(helm: Helm) -> None:
    helm("lint", "--strict", str(CHART))
    helm("lint", "--strict", str(CRDS_CHART))


def test_a_typo_in_the_values_fails_before_anything_is_rendered(helm: Helm) -> None:
    assert "operatr" in refused(helm, "--set", "operatr.workers=3", apis=[])
    assert "flink" in refused(helm, "--set", "flink.version=2.3", apis=[])


def test_the_operator_gets_the_endpoints_it_is_given_and_no_others(helm: Helm) -> None:
    # Without the chart's own MinIO and MLflow, only the endpoints given are set.
    rendered = render(
        helm,
        "--set",
        "endpoints.kafka=kafka:9092",
        "--set",
        "minio.enabled=false",
        "--set",
        "mlflow.enabled=false",
        "--set",
        "postgresql.enabled=false",
        apis=[],
    )
    deployment = one(rendered, "Deployment")
    (container,) = pod_spec(deployment)["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert "AWS_ACCESS_KEY_ID" not in env
    assert "CLINOPS_LAKE" not in env
    assert env["CLINOPS_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "CLINOPS_KFP_ENDPOINT" not in env
    assert "MLFLOW_TRACKING_URI" not in env
    assert "--namespace=ml" in container["args"]


def test_two_namespaces_install_wait_upgrade_and_uninstall_without_collisions(
    helm: Helm, api: client.ApiClient, tmp_path: Path
) -> None:
    helm("install", "clinops-crds", str(CRDS_CHART))
    extensions = client.ApiextensionsV1Api(api)
    first, second = restricted_namespace(api), restricted_namespace(api)
    core = client.CoreV1Api(api)
    # The chart's MinIO and PostgreSQL claim a volume each, in each namespace (default sizes).
    with local_volumes(api, tmp_path / "volumes", count=4, size="100Gi") as storage_class:
        try:
            _install_upgrade_uninstall(helm, api, (first, second), storage_class)
        finally:
            for namespace in (first, second):
                core.delete_namespace(namespace)
    helm("uninstall", "clinops-crds")
    # Helm never deletes what a chart's crds/ installed: the users' resources outlive the release.
    assert extensions.read_custom_resource_definition("driftmonitors.clinops.io").metadata.name


def _install_upgrade_uninstall(
    helm: Helm, api: client.ApiClient, namespaces: tuple[str, str], storage_class: str
) -> None:
    core, apps, access = client.CoreV1Api(api), client.AppsV1Api(api), client.RbacAuthorizationV1Api(api)
    storage = [f"--set={component}.persistence.storageClass={storage_class}" for component in ("minio", "postgresql")]
    first = namespaces[0]
    # The same release name in both: nothing the chart makes may be cluster-scoped or clash.
    for namespace in namespaces:
        helm("install", RELEASE, str(CHART), "-n", namespace, "--wait", "--timeout", "180s", *storage)
    for namespace in namespaces:
        deployment = apps.read_namespaced_deployment(f"{RELEASE}-operator", namespace)
        assert deployment.status.ready_replicas == 1
        role = access.read_namespaced_role(f"{RELEASE}-operator", namespace)
        assert [rule.resources for rule in role.rules] == [rule["resources"] for rule in rbac.RULES]

    helm("upgrade", RELEASE, str(CHART), "-n", first, "--wait", *storage, "--set", "operator.workers=4")
    (container,) = apps.read_namespaced_deployment(f"{RELEASE}-operator", first).spec.template.spec.containers
    assert {e.name: e.value for e in container.env}["CLINOPS_OPERATOR_WORKERS"] == "4"

    for namespace in namespaces:
        helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "180s")
        assert apps.list_namespaced_deployment(namespace).items == []
        assert access.list_namespaced_role(namespace).items == []
        names = [account.metadata.name for account in core.list_namespaced_service_account(namespace).items]
        assert names == ["default"]
