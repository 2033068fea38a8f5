"""The chart's data services (MinIO, MLflow, PostgreSQL) and NetworkPolicies: their conditional parts rendered by
helm template, then installed, upgraded and uninstalled on the real control plane."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from clinops.stack.process import poll_until
from tests.e2e import chart
from tests.e2e.chart import SCENARIOS, Doc, container, env, pod_spec
from tests.e2e.helm import CHART, CRDS_CHART, Helm, restricted_namespace
from tests.e2e.volumes import local_volumes

pytestmark = pytest.mark.e2e

RELEASE = "lab"
NAMESPACE = "ml"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
GENERATED = (f"{RELEASE}-minio", f"{RELEASE}-s3-client", f"{RELEASE}-postgresql")


def render(helm: Helm, *args: str) -> list[Doc]:
    """The chart as a cluster without any third-party API would have it."""
    return chart.render(helm, *args, apis=[], namespace=NAMESPACE, release=RELEASE)


def refused(helm: Helm, *args: str) -> str:
    return chart.refused(helm, *args, apis=[], namespace=NAMESPACE, release=RELEASE)


def names(docs: list[Doc], kind: str) -> set[str]:
    return {d["metadata"]["name"] for d in docs if d["kind"] == kind}


def secret_text(doc: Doc, key: str) -> str:
    return base64.b64decode(doc["data"][key]).decode()


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A LabelSelector's verdict on a set of labels (the apiserver's semantics, for the operators used here)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


# --- credentials ------------------------------------------------------------------------------------------------


def test_generated_credentials_are_random_per_install_and_never_a_default(helm: Helm) -> None:
    first, second = render(helm), render(helm)
    for name, keys in {
        f"{RELEASE}-minio": ("rootUser", "rootPassword"),
        f"{RELEASE}-s3-client": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        f"{RELEASE}-postgresql": ("password",),
    }.items():
        for key in keys:
            value = secret_text(chart.one(first, "Secret", name), key)
            assert len(value) >= 16
            assert value.isalnum()
            # Two renders with nothing in the cluster to look up: a fixed default would come out the same.
            assert value != secret_text(chart.one(second, "Secret", name), key)


def test_an_existing_minio_secret_replaces_the_generated_one_everywhere(helm: Helm) -> None:
    docs = render(
        helm,
        "--set",
        "minio.auth.existingSecret=site-minio",
        "--set",
        "minio.auth.rootUserKey=user",
        "--set",
        "minio.auth.rootPasswordKey=pass",
    )
    assert f"{RELEASE}-minio" not in names(docs, "Secret")
    for workload in (
        chart.one(docs, "StatefulSet", f"{RELEASE}-minio"),
        chart.one(docs, "Job", f"{RELEASE}-minio-buckets"),
    ):
        variables = env(workload)
        assert variables["MINIO_ROOT_USER"] == {"secretKeyRef": {"name": "site-minio", "key": "user"}}
        assert variables["MINIO_ROOT_PASSWORD"] == {"secretKeyRef": {"name": "site-minio", "key": "pass"}}
    # The workloads' own user is still the chart's: the root credentials never leave MinIO and the bucket Job.
    assert f"{RELEASE}-s3-client" in names(docs, "Secret")
    operator = env(chart.one(docs, "Deployment", f"{RELEASE}-operator"))
    assert operator["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] == f"{RELEASE}-s3-client"


def test_an_existing_postgresql_secret_replaces_the_generated_password(helm: Helm) -> None:
    docs = render(helm, "--set", "postgresql.auth.existingSecret=site-db", "--set", "postgresql.auth.passwordKey=pw")
    assert f"{RELEASE}-postgresql" not in names(docs, "Secret")
    reference = {"secretKeyRef": {"name": "site-db", "key": "pw"}}
    assert env(chart.one(docs, "StatefulSet", f"{RELEASE}-postgresql"))["POSTGRES_PASSWORD"] == reference
    assert env(chart.one(docs, "Deployment", f"{RELEASE}-mlflow"))["DB_PASSWORD"] == reference


# --- MLflow's backend store and auth ----------------------------------------------------------------------------


def test_the_external_postgres_scenario_runs_no_database_and_reads_the_uri_from_its_secret(helm: Helm) -> None:
    docs = render(helm, "-f", str(SCENARIOS / "external-postgres.yaml"))
    assert not [d for d in docs if d["metadata"]["name"].startswith(f"{RELEASE}-postgresql")]
    mlflow = chart.one(docs, "Deployment", f"{RELEASE}-mlflow")
    variables = env(mlflow)
    assert variables["MLFLOW_BACKEND_STORE_URI"] == {"secretKeyRef": {"name": "clinops-mlflow-db", "key": "uri"}}
    assert "DB_PASSWORD" not in variables
    # MLflow may reach the external database's port, wherever it is, and nothing else beyond MinIO.
    policy = chart.one(docs, "NetworkPolicy", f"{RELEASE}-mlflow")
    assert {"ports": [{"port": 5432, "protocol": "TCP"}]} in policy["spec"]["egress"]


def test_the_in_chart_database_is_reached_by_its_service_with_the_generated_password(helm: Helm) -> None:
    variables = env(chart.one(render(helm), "Deployment", f"{RELEASE}-mlflow"))
    assert variables["DB_PASSWORD"] == {"secretKeyRef": {"name": f"{RELEASE}-postgresql", "key": "password"}}
    # The password is spliced in by the kubelet: it is in no manifest and on no command line.
    assert (
        variables["MLFLOW_BACKEND_STORE_URI"] == f"postgresql://mlflow:$(DB_PASSWORD)@{RELEASE}-postgresql:5432/mlflow"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "postgresql.enabled=false"], "backend store"),
        (["--set", "mlflow.backendStore.existingSecret=db"], "postgresql.enabled=false"),
        (["--set", "minio.enabled=false"], "artifact store"),
        (["--set", "minio.buckets.lake=Not_A_Bucket"], "lake"),
        (["--set", "minio.persistence.size=lots"], "size"),
        (["--set", "mlflow.auth.defaultPermission=ALL"], "defaultPermission"),
        (["--set", "networkPolicy.ingresFrom[0].podSelector.matchLabels.a=b"], "ingresFrom"),
    ],
)
def test_inconsistent_or_misspelt_values_fail_with_the_value_named(helm: Helm, values: list[str], message: str) -> None:
    assert message in refused(helm, *values)


def test_without_auth_mlflow_is_the_plain_server_and_clients_carry_no_credentials(helm: Helm) -> None:
    docs = render(helm)
    mlflow = container(chart.one(docs, "Deployment", f"{RELEASE}-mlflow"))
    assert mlflow["command"][:2] == ["mlflow", "server"]
    assert not [arg for arg in mlflow["command"] if arg.startswith("--app-name")]
    assert f"{RELEASE}-mlflow-auth" not in names(docs, "Secret")
    assert "MLFLOW_TRACKING_PASSWORD" not in env(chart.one(docs, "Deployment", f"{RELEASE}-operator"))


def test_with_auth_mlflow_runs_the_basic_auth_app_and_the_operator_signs_in(helm: Helm) -> None:
    docs = render(helm, "--set", "mlflow.auth.enabled=true")
    deployment = chart.one(docs, "Deployment", f"{RELEASE}-mlflow")
    assert "--app-name=basic-auth" in container(deployment)["args"]
    secret = chart.one(docs, "Secret", f"{RELEASE}-mlflow-auth")
    assert secret_text(secret, "username") == "admin"
    assert len(secret_text(secret, "password")) >= 16
    variables = env(deployment)
    assert variables["MLFLOW_AUTH_ADMIN_PASSWORD"] == {
        "secretKeyRef": {"name": f"{RELEASE}-mlflow-auth", "key": "password"}
    }
    assert variables["MLFLOW_FLASK_SERVER_SECRET_KEY"]["secretKeyRef"]["key"] == "flaskSecretKey"
    operator = env(chart.one(docs, "Deployment", f"{RELEASE}-operator"))
    assert operator["MLFLOW_TRACKING_USERNAME"] == {
        "secretKeyRef": {"name": f"{RELEASE}-mlflow-auth", "key": "username"}
    }

    mine = render(helm, "--set", "mlflow.auth.enabled=true", "--set", "mlflow.auth.existingSecret=site-mlflow")
    assert f"{RELEASE}-mlflow-auth" not in names(mine, "Secret")
    assert env(chart.one(mine, "Deployment", f"{RELEASE}-mlflow"))["MLFLOW_AUTH_ADMIN_USERNAME"]["secretKeyRef"] == {
        "name": "site-mlflow",
        "key": "username",
    }


def test_mlflow_answers_its_service_names_and_stores_artifacts_in_its_bucket(helm: Helm) -> None:
    command = container(chart.one(render(helm), "Deployment", f"{RELEASE}-mlflow"))["command"]
    (hosts,) = [arg.split("=", 1)[1].split(",") for arg in command if arg.startswith("--allowed-hosts=")]
    assert {f"{RELEASE}-mlflow:*", f"{RELEASE}-mlflow.{NAMESPACE}.svc:*", "localhost:*"} <= set(hosts)
    assert "--artifacts-destination=s3://clinops-mlflow/" in command


# --- the operator's endpoints -----------------------------------------------------------------------------------


def test_the_operator_defaults_to_the_chart_services_and_an_explicit_endpoint_wins(helm: Helm) -> None:
    variables = env(chart.one(render(helm), "Deployment", f"{RELEASE}-operator"))
    assert variables["MLFLOW_TRACKING_URI"] == f"http://{RELEASE}-mlflow.{NAMESPACE}.svc:5000"
    assert variables["CLINOPS_S3_ENDPOINT"] == f"http://{RELEASE}-minio.{NAMESPACE}.svc:9000"
    assert variables["MLFLOW_S3_ENDPOINT_URL"] == variables["CLINOPS_S3_ENDPOINT"]
    assert variables["CLINOPS_LAKE"] == "s3://clinops-lake"
    assert variables["CLINOPS_SERVING_ENV_SECRET"] == f"{RELEASE}-s3-client"
    assert variables["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": f"{RELEASE}-s3-client", "key": "AWS_ACCESS_KEY_ID"}
    }

    given = env(
        chart.one(
            render(helm, "--set", "endpoints.mlflow=https://mlflow.example", "--set", "endpoints.lake=s3://elsewhere"),
            "Deployment",
            f"{RELEASE}-operator",
        )
    )
    assert given["MLFLOW_TRACKING_URI"] == "https://mlflow.example"
    assert given["CLINOPS_LAKE"] == "s3://elsewhere"
    assert given["CLINOPS_S3_ENDPOINT"] == f"http://{RELEASE}-minio.{NAMESPACE}.svc:9000"


def test_the_s3_client_secret_names_the_endpoint_the_workloads_use(helm: Helm) -> None:
    docs = render(helm, "--set", "endpoints.s3=https://s3.example")
    secret = chart.one(docs, "Secret", f"{RELEASE}-s3-client")
    assert secret_text(secret, "MLFLOW_S3_ENDPOINT_URL") == "https://s3.example"
    assert secret_text(secret, "AWS_ENDPOINT_URL") == "https://s3.example"


# --- buckets ----------------------------------------------------------------------------------------------------


def test_the_bucket_job_is_a_post_install_and_upgrade_hook_creating_the_configured_buckets(helm: Helm) -> None:
    docs = render(helm, "--set", "minio.buckets.flink=team-checkpoints")
    job = chart.one(docs, "Job", f"{RELEASE}-minio-buckets")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    config = chart.one(docs, "ConfigMap", f"{RELEASE}-minio-buckets")["data"]
    assert "for bucket in clinops-lake clinops-mlflow team-checkpoints; do" in config["setup.sh"]
    resources = yaml.safe_load(config["policy.json"])["Statement"][0]["Resource"]
    assert set(resources) == {
        f"arn:aws:s3:::{bucket}{suffix}"
        for bucket in ("clinops-lake", "clinops-mlflow", "team-checkpoints")
        for suffix in ("", "/*")
    }


# --- persistence ------------------------------------------------------------------------------------------------


def test_persistence_sizes_and_storage_class_reach_the_claims(helm: Helm) -> None:
    docs = render(
        helm,
        "--set",
        "minio.persistence.size=500Gi",
        "--set",
        "minio.persistence.storageClass=gp3",
        "--set",
        "postgresql.persistence.size=50Gi",
    )
    (minio,) = chart.one(docs, "StatefulSet", f"{RELEASE}-minio")["spec"]["volumeClaimTemplates"]
    assert minio["spec"]["resources"]["requests"]["storage"] == "500Gi"
    assert minio["spec"]["storageClassName"] == "gp3"
    (database,) = chart.one(docs, "StatefulSet", f"{RELEASE}-postgresql")["spec"]["volumeClaimTemplates"]
    assert database["spec"]["resources"]["requests"]["storage"] == "50Gi"
    # No class named: the cluster's default decides.
    assert "storageClassName" not in database["spec"]


def test_volumes_go_with_the_release_unless_kept_and_then_their_credentials_stay_too(helm: Helm) -> None:
    default = render(helm)
    for name in (f"{RELEASE}-minio", f"{RELEASE}-postgresql"):
        policy = chart.one(default, "StatefulSet", name)["spec"]["persistentVolumeClaimRetentionPolicy"]
        assert policy["whenDeleted"] == "Delete"
        assert "annotations" not in chart.one(default, "Secret", name)["metadata"]
    kept = render(helm, "--set", "postgresql.persistence.keepOnUninstall=true")
    database = chart.one(kept, "StatefulSet", f"{RELEASE}-postgresql")
    assert database["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    secret = chart.one(kept, "Secret", f"{RELEASE}-postgresql")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- every pod --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [[], ["--set", "mlflow.auth.enabled=true"], ["-f", str(SCENARIOS / "external-postgres.yaml")]]
)
def test_every_pod_is_restricted_with_requests_and_limits(helm: Helm, values: list[str]) -> None:
    workloads = [d for d in render(helm, *values) if d["kind"] in WORKLOADS]
    assert len(workloads) >= 4
    for workload in workloads:
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for item in spec["containers"]:
            context = item["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert item["resources"]["requests"], item["name"]
            assert item["resources"]["limits"]["memory"], item["name"]


def test_every_name_carries_the_release_and_nothing_is_cluster_scoped(helm: Helm) -> None:
    docs = render(helm, "--set", "mlflow.auth.enabled=true")
    for doc in docs:
        assert doc["metadata"]["name"].startswith(f"{RELEASE}-"), doc["metadata"]["name"]
        assert doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "StorageClass", "PersistentVolume")


# --- NetworkPolicies --------------------------------------------------------------------------------------------


def test_network_policies_deny_every_chart_pod_by_default(helm: Helm) -> None:
    docs = render(helm)
    deny = chart.one(docs, "NetworkPolicy", f"{RELEASE}-default-deny")["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    for workload in (d for d in docs if d["kind"] in WORKLOADS):
        assert selects(deny["podSelector"], workload["spec"]["template"]["metadata"]["labels"])
    # Pods the operator makes carry part-of=clinops; Strimzi's brokers keep their own operator's policies.
    assert selects(
        deny["podSelector"], {"app.kubernetes.io/name": "clinops-model-server", "app.kubernetes.io/part-of": "clinops"}
    )
    assert not selects(deny["podSelector"], {"app.kubernetes.io/part-of": "clinops", "strimzi.io/cluster": "lab-kafka"})


def test_network_policies_let_each_pod_reach_only_what_it_needs(helm: Helm) -> None:
    docs = render(helm)

    def egress_targets(policy: str) -> list[tuple[str, int]]:
        rules = chart.one(docs, "NetworkPolicy", f"{RELEASE}-{policy}")["spec"]["egress"]
        found = []
        for rule in rules:
            for port in rule["ports"]:
                for peer in rule.get("to") or [{"podSelector": {"matchLabels": {"anywhere": "yes"}}}]:
                    labels = peer["podSelector"]["matchLabels"]
                    target = labels.get("app.kubernetes.io/name") or labels.get("strimzi.io/cluster") or "anywhere"
                    found.append((target, port["port"]))
        return found

    assert set(egress_targets("operator")) == {
        ("anywhere", 443),
        ("anywhere", 6443),
        ("anywhere", 8888),
        ("mlflow", 5000),
        ("minio", 9000),
        (f"{RELEASE}-kafka", 9092),
        (f"{RELEASE}-kafka", 9093),
    }
    assert set(egress_targets("mlflow")) == {("minio", 9000), ("postgresql", 5432)}
    assert {("mlflow", 5000), ("minio", 9000), (f"{RELEASE}-kafka", 9092)} <= set(egress_targets("model-servers"))
    database = chart.one(docs, "NetworkPolicy", f"{RELEASE}-postgresql")["spec"]["ingress"]
    assert database == [
        {
            "from": [
                {
                    "podSelector": {
                        "matchLabels": {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": "mlflow"}
                    }
                }
            ],
            "ports": [{"port": 5432, "protocol": "TCP"}],
        }
    ]


def test_configured_ingress_sources_reach_the_user_facing_ports(helm: Helm) -> None:
    docs = render(helm, "--set", "networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.role=ingress")
    peer = {"namespaceSelector": {"matchLabels": {"role": "ingress"}}}
    minio = chart.one(docs, "NetworkPolicy", f"{RELEASE}-minio")["spec"]["ingress"]
    assert {"from": [peer], "ports": [{"port": 9001, "protocol": "TCP"}]} in minio
    for name, port in (("mlflow", 5000), ("model-servers", 8080), ("grafana", 3000), ("prometheus", 9090)):
        rules = chart.one(docs, "NetworkPolicy", f"{RELEASE}-{name}")["spec"]["ingress"]
        assert any(peer in rule["from"] and {"port": port, "protocol": "TCP"} in rule["ports"] for rule in rules), name


def test_network_policies_off_renders_none(helm: Helm) -> None:
    assert not names(render(helm, "--set", "networkPolicy.enabled=false"), "NetworkPolicy")


# --- on the control plane ---------------------------------------------------------------------------------------


@pytest.fixture
def namespaces(api: client.ApiClient) -> Iterator[tuple[str, str]]:
    pair = (restricted_namespace(api), restricted_namespace(api))
    yield pair
    for namespace in pair:
        client.CoreV1Api(api).delete_namespace(namespace)


def wait_until_gone(listing: Callable[[], list[Any]], timeout: float = 60.0) -> None:
    assert poll_until(lambda: not listing(), timeout), [item.metadata.name for item in listing()]


def secret_bytes(core: client.CoreV1Api, namespace: str) -> dict[str, dict[str, str]]:
    return {name: core.read_namespaced_secret(name, namespace).data for name in GENERATED}


@pytest.fixture
def crds(helm: Helm) -> Iterator[None]:
    """The CRDs chart for the length of one test: the chart tests share the session's cluster."""
    helm("upgrade", "--install", "clinops-crds", str(CRDS_CHART))
    yield
    helm("uninstall", "clinops-crds")


@pytest.mark.usefixtures("crds")
def test_install_upgrade_and_uninstall_keep_credentials_and_leave_nothing(
    helm: Helm, api: client.ApiClient, namespaces: tuple[str, str], tmp_path: Path
) -> None:
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    networking = client.NetworkingV1Api(api)
    # Two claims per release (MinIO, PostgreSQL), two releases.
    with local_volumes(api, tmp_path / "volumes", count=4) as storage_class:
        storage = [
            f"--set={component}.persistence.{key}"
            for component in ("minio", "postgresql")
            for key in (f"storageClass={storage_class}", "size=1Gi")
        ]
        for namespace in namespaces:
            # --wait covers the post-install bucket Job: the install fails unless it completes.
            done = helm("install", RELEASE, str(CHART), "-n", namespace, "--wait", "--timeout", "180s", *storage)
            # The notes tell the user how to reach what this release runs, in its own namespace.
            for service in ("mlflow", "minio"):
                assert f"kubectl -n {namespace} port-forward svc/{RELEASE}-{service} " in done.stdout
        first, second = namespaces
        for namespace in namespaces:
            for name in (f"{RELEASE}-minio", f"{RELEASE}-postgresql"):
                assert apps.read_namespaced_stateful_set(name, namespace).status.ready_replicas == 1
            assert apps.read_namespaced_deployment(f"{RELEASE}-mlflow", namespace).status.ready_replicas == 1
            claims = core.list_namespaced_persistent_volume_claim(namespace).items
            assert sorted(claim.status.phase for claim in claims) == ["Bound", "Bound"]
            # The hook's Job succeeded and was cleaned up after itself.
            assert batch.list_namespaced_job(namespace).items == []
        before = secret_bytes(core, first)
        # Generated per release: the other namespace's credentials are its own.
        assert before != secret_bytes(core, second)

        helm(
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            first,
            "--wait",
            "--timeout",
            "180s",
            *storage,
            "--set",
            "mlflow.replicas=2",
            "--set",
            "mlflow.auth.enabled=true",
            "--set",
            "minio.buckets.flink=checkpoints",
        )
        assert apps.read_namespaced_deployment(f"{RELEASE}-mlflow", first).status.ready_replicas == 2
        assert secret_bytes(core, first) == before
        auth = core.read_namespaced_secret(f"{RELEASE}-mlflow-auth", first).data
        buckets = core.read_namespaced_config_map(f"{RELEASE}-minio-buckets", first).data["setup.sh"]
        assert "checkpoints" in buckets
        # A second upgrade changes nothing that was generated, the new auth Secret included.
        helm("upgrade", RELEASE, str(CHART), "-n", first, "--wait", "--reuse-values", "--set", "mlflow.replicas=1")
        assert secret_bytes(core, first) == before
        assert core.read_namespaced_secret(f"{RELEASE}-mlflow-auth", first).data == auth

        for namespace in namespaces:
            helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "180s")
            assert apps.list_namespaced_stateful_set(namespace).items == []
            assert apps.list_namespaced_deployment(namespace).items == []
            assert networking.list_namespaced_network_policy(namespace).items == []
            assert [s.metadata.name for s in core.list_namespaced_secret(namespace).items] == []
            assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["kube-root-ca.crt"]
            assert core.list_namespaced_service(namespace).items == []
            # The StatefulSets' claims go with them (retention policy Delete), once the GC has seen the owners go.
            wait_until_gone(lambda ns=namespace: core.list_namespaced_persistent_volume_claim(ns).items)
            wait_until_gone(lambda ns=namespace: core.list_namespaced_pod(ns).items)
