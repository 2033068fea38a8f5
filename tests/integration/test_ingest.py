"""Kafka → bronze on a real broker: exactly once through crashes and broker restarts, garbage to quarantine."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from clinops.data.emit import TransportStream, transport_stream
from clinops.data.generator import GeneratorConfig, generate
from clinops.lake.layout import QUARANTINE
from clinops.lake.silver import bronze_to_silver
from clinops.lake.store import Lake
from clinops.streaming.ingest import EVENT_TOPICS, BronzeIngestor, IngestSettings
from clinops.streaming.producer import EventProducer, produce_events
from tests.integration.kafka_helpers import group_at_end

pytestmark = pytest.mark.integration


def unique_topic(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def synthetic_stream(topic: str, count: int) -> TransportStream:
    """``count`` uniquely numbered events."""
    ids = np.arange(count)
    values = [orjson.dumps({"event_id": f"ev-{i}", "patient_id": f"p-{i % 997}", "seq": i}) for i in ids.tolist()]
    return TransportStream(
        topics=np.full(count, topic, dtype=object),
        keys=np.array([f"p-{i % 997}" for i in ids.tolist()], dtype=object),
        values=values,
        times_ms=np.zeros(count, dtype=np.int64),  # Kafka stamps them as sent
        records={topic: count},
    )


def bronze_values(lake: Lake, topic: str) -> list[dict[str, object]]:
    rows = []
    for key in lake.keys(f"bronze/{topic}/", suffix=".jsonl"):
        rows.extend(orjson.loads(line) for line in lake.read_bytes(key).splitlines())
    return rows


def quarantined(lake: Lake, entity: str) -> list[dict[str, object]]:
    rows = []
    for key in lake.keys(f"{QUARANTINE}/{entity}/", suffix=".jsonl"):
        rows.extend(orjson.loads(line) for line in lake.read_bytes(key).splitlines())
    return rows


def test_generated_events_reach_bronze_exactly_as_produced(kafka_broker, tmp_path: Path) -> None:
    config = GeneratorConfig(patients=60, seed=11, days=10)
    expected = transport_stream(generate(config))
    group = group_at_end(kafka_broker.bootstrap, unique_topic("group"), EVENT_TOPICS)
    report = produce_events(kafka_broker.bootstrap, config)
    assert report.failed_total == 0
    assert dict(report.delivered) == expected.records

    lake = Lake(tmp_path / "lake")
    ingestor = BronzeIngestor(kafka_broker.bootstrap, lake, IngestSettings(group=group, batch_seconds=1))
    result = ingestor.run(exit_at_end=True)

    assert result.records + result.quarantined == len(expected)
    for topic, count in expected.records.items():
        assert sorted(orjson.dumps(v) for v in bronze_values(lake, topic)) == sorted(
            orjson.dumps(orjson.loads(v)) for v, t in zip(expected.values, expected.topics, strict=True) if t == topic
        ), topic
        assert len(bronze_values(lake, topic)) == count
    samples = ingestor.metrics.registry.get_sample_value
    assert samples("clinops_ingest_records_total", {"topic": "patient-vitals"}) == expected.records["patient-vitals"]


def _ingest_command(bootstrap: str, lake: Path, topic: str, group: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("clinops")),
        "ingest",
        "--bootstrap",
        bootstrap,
        "--lake",
        str(lake),
        "--topic",
        topic,
        "--group",
        group,
        "--instance-id",
        "bronze-0",
        "--batch-records",
        "1500",
        "--batch-seconds",
        "0.3",
    ]


def _object_count(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.jsonl")) if root.exists() else 0


def test_sigkilled_bronze_writer_loses_and_duplicates_nothing(kafka_broker, tmp_path: Path) -> None:
    topic = unique_topic("kill")
    kafka_broker.create_topics([topic], partitions=3)
    total = 100_000
    # Events keep arriving while the writer is killed again and again, as they would in production.
    with EventProducer(kafka_broker.bootstrap) as producer:
        sender = threading.Thread(target=producer.send, args=(synthetic_stream(topic, total),), kwargs={"rate": 1500})
        sender.start()
        lake_dir = tmp_path / "lake"
        command = _ingest_command(kafka_broker.bootstrap, lake_dir, topic, unique_topic("group"))
        rng = random.Random(3)
        with (tmp_path / "ingest.log").open("wb") as log:
            for kill in range(10):
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    # Kill only once this incarnation has written something, at a random moment after that.
                    seen, deadline = _object_count(lake_dir), time.monotonic() + 120
                    while _object_count(lake_dir) == seen and process.poll() is None and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert process.poll() is None, f"writer {kill} exited with {process.returncode}"
                    assert _object_count(lake_dir) > seen, f"writer {kill} wrote nothing in 120s"
                    time.sleep(rng.uniform(0, 0.3))
                finally:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            sender.join()
            assert producer.flush().delivered_total == total
            final = subprocess.run([*command, "--exit-at-end"], stdout=log, stderr=subprocess.STDOUT, timeout=300)
        assert final.returncode == 0, (tmp_path / "ingest.log").read_text()[-3000:]

    counts = Counter(row["seq"] for row in bronze_values(Lake(lake_dir), topic))
    assert len(counts) == total
    assert set(counts) == set(range(total))
    assert max(counts.values()) == 1


def test_broker_restart_mid_ingestion_delivers_every_acknowledged_event_once(kafka_broker, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    group = group_at_end(kafka_broker.bootstrap, unique_topic("group"), EVENT_TOPICS)
    config = GeneratorConfig(patients=150, seed=21, days=20)
    stream = transport_stream(generate(config))
    stop = threading.Event()
    ingestor = BronzeIngestor(kafka_broker.bootstrap, lake, IngestSettings(group=group, batch_seconds=0.5))
    worker = threading.Thread(target=ingestor.run, kwargs={"stop": stop})
    worker.start()

    first, second = _split(stream, len(stream) // 2)
    with EventProducer(kafka_broker.bootstrap) as producer:
        producer.send(first, rate=20_000)
        kafka_broker.restart()
        producer.send(second, rate=20_000)
        report = producer.flush(timeout=180)
    stop.set()
    worker.join(timeout=120)
    assert report.failed_total == 0
    assert report.delivered_total == len(stream)

    # Whatever the first consumer had not finished, a second one picks up from the committed offsets.
    BronzeIngestor(kafka_broker.bootstrap, lake, IngestSettings(group=group, batch_seconds=0.5)).run(exit_at_end=True)
    sent = {str(orjson.loads(v)["event_id"]) for v in stream.values}
    in_bronze = Counter(str(row["event_id"]) for topic in EVENT_TOPICS for row in bronze_values(lake, topic))
    assert set(in_bronze) == sent
    assert max(in_bronze.values()) == 1

    bronze_to_silver(lake)
    in_silver: Counter[str] = Counter()
    for entity in ("vitals", "medications", "lab_results", "adverse_events"):
        if lake.keys(f"silver/{entity}/"):
            in_silver.update(
                lake.read_parquet(f"silver/{entity}/", columns=["event_id"]).column("event_id").to_pylist()
            )
        in_silver.update(str(row["record"]["event_id"]) for row in quarantined(lake, entity))
    assert set(in_silver) == sent
    assert max(in_silver.values()) == 1


def _split(stream: TransportStream, at: int) -> tuple[TransportStream, TransportStream]:
    def part(sl: slice) -> TransportStream:
        return TransportStream(stream.topics[sl], stream.keys[sl], stream.values[sl], stream.times_ms[sl], {})

    return part(slice(0, at)), part(slice(at, None))


def test_garbage_is_quarantined_with_reasons_and_never_stops_ingestion(kafka_broker, tmp_path: Path) -> None:
    topic = "patient-vitals"
    good = synthetic_stream(topic, 50)
    garbage = [
        b"not json at all",
        b"[1, 2, 3]",
        b"",
        orjson.dumps({"event_id": "huge", "note": "x" * 200_000}),
        b'{"event_id": "truncated", "heart_rate": 8',
    ]
    wrong_types = orjson.dumps(
        {
            "event_id": "ev-wrong-types",
            "patient_id": "p-1",
            "encounter_id": "enc-1",
            "timestamp": "2026-01-01T00:10:00Z",
            "source": "monitor",
            "heart_rate": "fast",
        }
    )
    values = [*garbage, wrong_types, *good.values]
    n = len(values)
    stream = TransportStream(
        topics=np.full(n, topic, dtype=object),
        keys=np.full(n, "p-1", dtype=object),
        values=values,
        times_ms=np.full(n, 1_767_225_600_000, dtype=np.int64),
        records={},
    )
    kafka_topic = unique_topic("garbage")
    kafka_broker.create_topics([kafka_topic], partitions=1)
    with EventProducer(kafka_broker.bootstrap) as producer:
        producer.send(TransportStream(np.full(n, kafka_topic, dtype=object), stream.keys, values, stream.times_ms, {}))
        assert producer.flush().delivered_total == n

    lake = Lake(tmp_path / "lake")
    ingestor = BronzeIngestor(kafka_broker.bootstrap, lake, IngestSettings(topics=(kafka_topic,), group=kafka_topic))
    result = ingestor.run(exit_at_end=True)

    assert result.quarantined == len(garbage)
    assert result.records == n - len(garbage)
    reasons = sorted(str(row["reasons"][0]).partition(":")[0] for row in quarantined(lake, kafka_topic))
    assert reasons == ["malformed_json"] * 4 + ["oversized"]
    huge = next(row for row in quarantined(lake, kafka_topic) if "oversized" in str(row["reasons"]))
    assert len(str(huge["raw"])) > 200_000  # kept whole: quarantine loses nothing
    samples = ingestor.metrics.registry.get_sample_value
    assert samples("clinops_ingest_quarantined_total", {"topic": kafka_topic}) == len(garbage)
    assert len(bronze_values(lake, kafka_topic)) == n - len(garbage)
