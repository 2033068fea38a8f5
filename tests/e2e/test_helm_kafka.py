"""The chart's Kafka: Strimzi resources only where Strimzi is, dev and prod sizing, the platform's seven topics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.chart import SCENARIOS, STRIMZI, STRIMZI_KINDS, env, kinds, of_kind, one, refused, render
from tests.e2e.helm import Helm

pytestmark = pytest.mark.e2e

TOPICS = {"patient-vitals", "medications", "lab-results", "adverse-events", "predictions", "outcomes", "drift-results"}
HOUR_MS = 3_600_000


def topics(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["spec"]["topicName"]: doc for doc in of_kind(documents, "KafkaTopic")}


@pytest.mark.parametrize(
    ("setting", "apis", "rendered"),
    [
        (None, STRIMZI, True),
        (None, [], False),
        ("false", STRIMZI, False),
        ("true", [], True),
    ],
    ids=["auto-with-strimzi", "auto-without-strimzi", "false-with-strimzi", "true-without-strimzi"],
)
def test_strimzi_resources_follow_the_presence_rule(
    helm: Helm, setting: str | None, apis: list[str], rendered: bool
) -> None:
    options = [] if setting is None else ["--set", f"kafka.enabled={setting}"]
    documents = render(helm, *options, apis=apis)
    assert kinds(documents) & STRIMZI_KINDS == (STRIMZI_KINDS if rendered else set())


def test_dev_is_one_node_and_every_topic_on_it(helm: Helm) -> None:
    documents = render(helm)
    kafka = one(documents, "Kafka")
    pool = one(documents, "KafkaNodePool")
    assert kafka["metadata"]["name"] == "clinops-kafka"
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "clinops-kafka"
    assert pool["spec"]["replicas"] == 1
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    settings = kafka["spec"]["kafka"]["config"]
    assert settings["default.replication.factor"] == 1
    assert settings["min.insync.replicas"] == 1
    found = topics(documents)
    assert set(found) == TOPICS
    for name, topic in found.items():
        assert topic["metadata"]["name"] == f"clinops-{name}"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "clinops-kafka"
        assert topic["spec"]["replicas"] == 1
        assert topic["spec"]["config"]["min.insync.replicas"] == "1"
    assert found["predictions"]["spec"]["partitions"] == 3
    assert found["drift-results"]["spec"]["partitions"] == 1
    assert int(found["predictions"]["spec"]["config"]["retention.ms"]) == 168 * HOUR_MS
    assert int(found["outcomes"]["spec"]["config"]["retention.ms"]) == 1440 * HOUR_MS


def test_prod_is_three_nodes_writing_to_two_in_sync_replicas(helm: Helm) -> None:
    documents = render(helm, values=SCENARIOS / "prod.yaml")
    pool = one(documents, "KafkaNodePool")
    assert pool["spec"]["replicas"] == 3
    assert pool["spec"]["storage"]["volumes"][0]["size"] == "100Gi"
    settings = one(documents, "Kafka")["spec"]["kafka"]["config"]
    assert settings["default.replication.factor"] == 3
    assert settings["min.insync.replicas"] == 2
    assert settings["offsets.topic.replication.factor"] == 3
    assert settings["transaction.state.log.min.isr"] == 2
    found = topics(documents)
    assert set(found) == TOPICS
    assert {name: t["spec"]["replicas"] for name, t in found.items()} == dict.fromkeys(TOPICS, 3)
    assert {name: t["spec"]["config"]["min.insync.replicas"] for name, t in found.items()} == dict.fromkeys(TOPICS, "2")
    # A topic's own setting still wins over the scenario's defaults.
    assert found["drift-results"]["spec"]["partitions"] == 1
    assert found["patient-vitals"]["spec"]["partitions"] == 6


def test_a_topic_can_be_added_and_sized_from_the_values(helm: Helm) -> None:
    documents = render(
        helm, "--set", "kafka.topics.sensor-readings.partitions=12", "--set", "kafka.topics.outcomes.retentionHours=24"
    )
    found = topics(documents)
    assert set(found) == TOPICS | {"sensor-readings"}
    assert found["sensor-readings"]["spec"]["partitions"] == 12
    assert int(found["outcomes"]["spec"]["config"]["retention.ms"]) == 24 * HOUR_MS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["kafka.minInsyncReplicas=2"], "kafka.minInsyncReplicas (2) cannot exceed kafka.replicationFactor (1)"),
        (["kafka.replicationFactor=3"], "kafka.replicationFactor (3) cannot exceed kafka.replicas (1)"),
        (["kafka.topics.outcomes.replicas=2"], "kafka.topics.outcomes: 2 replicas on 1 Kafka nodes"),
        (["kafka.topics.outcomes.partitons=2"], "partitons"),
        (["kafka.storage.type=local"], "/kafka/storage/type"),
    ],
    ids=["min-insync-above-replication", "replication-above-nodes", "topic-above-nodes", "typo", "storage-type"],
)
def test_sizes_that_cannot_work_are_refused_by_name(helm: Helm, options: list[str], message: str) -> None:
    args = [item for option in options for item in ("--set", option)]
    assert message in refused(helm, *args, apis=[STRIMZI[0]])


@pytest.mark.parametrize(
    ("options", "apis", "bootstrap"),
    [
        ([], STRIMZI, "clinops-kafka-kafka-bootstrap:9092"),
        (["--set", "endpoints.kafka=brokers.shared:9092"], STRIMZI, "brokers.shared:9092"),
        ([], [], None),
    ],
    ids=["the-chart's-kafka", "an-explicit-endpoint-wins", "no-kafka-no-bootstrap"],
)
def test_the_operator_is_pointed_at_the_charts_kafka_unless_told_otherwise(
    helm: Helm, options: list[str], apis: list[str], bootstrap: str | None
) -> None:
    operator = one(render(helm, *options, apis=apis), "Deployment", "clinops-operator")
    assert env(operator).get("CLINOPS_KAFKA_BOOTSTRAP") == bootstrap
