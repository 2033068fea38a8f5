"""The chart's bronze ingestion: consumers where Kafka and a lake both are, wired to them, scraped, fenced in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.chart import ALL_APIS, PROMETHEUS_OPERATOR, RELEASE, one, pod_spec, refused, render
from tests.e2e.helm import Helm

pytestmark = pytest.mark.e2e

NAME = f"{RELEASE}-ingest"


def ingest_pod(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return pod_spec(one(documents, "StatefulSet", NAME))


@pytest.mark.parametrize(
    ("options", "apis", "rendered"),
    [
        ([], ALL_APIS, True),
        ([], PROMETHEUS_OPERATOR, False),
        (["--set", "endpoints.kafka=brokers.shared:9092"], PROMETHEUS_OPERATOR, True),
        (["--set", "minio.enabled=false", "--set", "mlflow.enabled=false"], ALL_APIS, False),
        (
            ["--set", "minio.enabled=false", "--set", "endpoints.lake=s3://lake", "--set", "mlflow.enabled=false"],
            ALL_APIS,
            True,
        ),
        (["--set", "ingestion.enabled=false"], ALL_APIS, False),
    ],
    ids=["kafka-and-minio", "no-kafka", "external-kafka", "no-lake", "external-lake", "turned-off"],
)
def test_ingestion_runs_only_where_it_has_a_kafka_and_a_lake(
    helm: Helm, options: list[str], apis: list[str], rendered: bool
) -> None:
    found = {d["kind"] for d in render(helm, *options, apis=apis) if d["metadata"]["name"] == NAME}
    assert found & {"StatefulSet", "Service"} == ({"StatefulSet", "Service"} if rendered else set())
    # The policy fencing the members comes and goes with them.
    assert ("NetworkPolicy" in found) == rendered


def test_insisting_on_ingestion_without_kafka_names_what_is_missing(helm: Helm) -> None:
    assert "ingestion.enabled=true needs a Kafka" in refused(helm, "--set", "ingestion.enabled=true", apis=[])


def test_each_member_consumes_the_charts_kafka_into_the_charts_lake_as_itself(helm: Helm) -> None:
    documents = render(helm, "--set", "ingestion.replicas=3", "--set", "ingestion.batchSeconds=2")
    statefulset = one(documents, "StatefulSet", NAME)
    assert statefulset["spec"]["replicas"] == 3
    pod = ingest_pod(documents)
    (container,) = pod["containers"]
    assert container["command"] == ["clinops", "ingest"]
    args = set(container["args"])
    assert {
        f"--bootstrap={RELEASE}-kafka-kafka-bootstrap:9092",
        "--lake=s3://clinops-lake",
        "--group=clinops-bronze",
        "--batch-seconds=2",
        "--metrics-address=0.0.0.0",
    } <= args
    env = {item["name"]: item for item in container["env"]}
    # Static membership: a restarted pod keeps its name, so it takes its partitions back without a rebalance wait.
    assert env["CLINOPS_INGEST_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CLINOPS_S3_ENDPOINT"]["value"] == f"http://{RELEASE}-minio.ml.svc:9000"
    assert container["envFrom"] == [{"secretRef": {"name": f"{RELEASE}-s3-client"}}]
    # Longer than a batch's time limit: a stopping member writes and commits what it holds first.
    assert pod["terminationGracePeriodSeconds"] > 2
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"]


def test_prometheus_scrapes_the_members_and_they_reach_only_kafka_and_minio(helm: Helm) -> None:
    documents = render(helm)
    labels = one(documents, "StatefulSet", NAME)["spec"]["template"]["metadata"]["labels"]
    (port,) = ingest_pod(documents)["containers"][0]["ports"]
    monitor = one(documents, "PodMonitor", f"{RELEASE}-ingest")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert [endpoint["port"] for endpoint in monitor["spec"]["podMetricsEndpoints"]] == [port["name"]]
    policies = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "NetworkPolicy"}
    egress = policies[f"{RELEASE}-ingest"]["egress"]
    targets = {
        (
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
            or peer["podSelector"]["matchLabels"]["strimzi.io/cluster"],
            rule_port["port"],
        )
        for rule in egress
        for peer in rule["to"]
        for rule_port in rule["ports"]
    }
    assert targets == {(f"{RELEASE}-kafka", 9092), (f"{RELEASE}-kafka", 9093), ("minio", 9000)}
    minio_sources = policies[f"{RELEASE}-minio"]["ingress"][0]["from"]
    assert any(peer["podSelector"]["matchLabels"].items() <= labels.items() for peer in minio_sources)
    scraped = [item["port"] for item in policies[f"{RELEASE}-metrics"]["ingress"][0]["ports"]]
    assert port["containerPort"] in scraped
