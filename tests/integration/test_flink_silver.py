"""The Flink bronze → silver job (stream env, local mini-cluster) yields the batch path's silver and quarantine."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Message, Producer

from clinops.data.emit import emit_to_lake, transport_stream
from clinops.data.generator import DirtRates, GeneratorConfig, generate
from clinops.data.schemas import ENTITY_BY_EVENT_TYPE, TOPIC_BY_EVENT_TYPE, EventType
from clinops.data.validation import validate
from clinops.features.offline import build_gold
from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.layout import silver_prefix
from clinops.lake.silver import bronze_to_silver, silver_schema
from clinops.lake.store import Lake
from clinops.stack.kafka import KafkaBroker
from clinops.streaming.flink_launcher import job_command, job_environment, stream_python
from tests.integration.kafka_helpers import group_at_end

pytestmark = pytest.mark.integration

JOB_TIMEOUT_S = 900
# Dirtier than the default cohort, so every rule fires on a small one.
DIRT = DirtRates(
    duplicate=0.05,
    out_of_range=0.03,
    alternative_unit=0.1,
    unlabelled_unit=0.03,
    missing_field=0.03,
    not_numeric=0.03,
    missing_measurement=0.1,
    bad_timestamp=0.02,
)
HOUR_MS = 3_600_000
BASE_MS = 1_767_312_000_000  # 2026-01-02T00:00:00Z


def vitals(event_id: str, **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "event_id": event_id,
        "event_type": "vitals",
        "patient_id": "p-edge",
        "encounter_id": "e-edge",
        "timestamp": "2026-01-02T00:10:00Z",
        "source": "monitor-edge",
        "heart_rate": 80.0,
        "systolic_bp": 120.0,
        "diastolic_bp": 80.0,
        "spo2": 97.0,
        "temperature": 37.0,
        "temperature_unit": "C",
        "respiratory_rate": 16.0,
    }
    record.update(changes)
    return record


# Records the generator never writes: what only the general timestamp parser reads, text where numbers go,
# whitespace the batch path strips, replays and re-sends.
EDGE_RECORDS = [
    vitals("edge-offset", timestamp="2026-01-02T01:10:00+01:00", patient_id="p-tz"),
    vitals("edge-offset-resend", timestamp="2026-01-02T01:10:00+01:00", patient_id="p-tz"),
    # The instant of edge-offset written canonically: a duplicate of it whichever parser reads each text.
    vitals("edge-offset-canonical", timestamp="2026-01-02T00:10:00Z", patient_id="p-tz"),
    vitals("edge-millis", timestamp="2026-01-02T00:11:00.250Z"),
    vitals("edge-space", timestamp="2026-01-02 00:12:00Z"),
    vitals("edge-feb30", timestamp="2026-02-30T00:13:00Z"),
    vitals("edge-hour25", timestamp="2026-01-02T25:00:00Z"),
    vitals("edge-blank-ts", timestamp="  "),
    vitals("edge-numeric-text", heart_rate=" 88 ", spo2="1e2", timestamp="2026-01-02T00:14:00Z"),
    vitals("edge-nan", heart_rate="NaN", timestamp="2026-01-02T00:15:00Z"),
    vitals("edge-inf", heart_rate="-inf", timestamp="2026-01-02T00:16:00Z"),
    vitals("edge-java-float", heart_rate="88d", timestamp="2026-01-02T00:17:00Z"),
    vitals("edge-tabs", patient_id="\tp-tab\t", source="\u3000monitor-edge", timestamp="2026-01-02T00:18:00Z"),
    vitals("edge-blank-unit", temperature_unit="", timestamp="2026-01-02T00:19:00Z"),
    vitals("edge-unlabelled-c", temperature_unit=None, temperature=38.0, timestamp="2026-01-02T00:20:00Z"),
    vitals("edge-f-at-limit", temperature_unit="F", temperature=109.4, timestamp="2026-01-02T00:21:00Z"),
    vitals("edge-empty", **dict.fromkeys(("heart_rate", "systolic_bp", "diastolic_bp", "spo2"))),
    vitals("edge-wrong-type", event_type="lab_result", timestamp="2026-01-02T00:22:00Z"),
    vitals("edge-replay", timestamp="2026-01-02T00:23:00Z"),
    vitals("edge-replay", timestamp="2026-01-02T00:23:00Z"),
    vitals(" edge-replay ", timestamp="2026-01-02T00:23:00Z"),
    vitals("edge-invalid-replay", heart_rate=999.0, timestamp="2026-01-02T00:24:00Z"),
    vitals("edge-invalid-replay", heart_rate=999.0, timestamp="2026-01-02T00:24:00Z"),
]


def write_edge_objects(lake: Lake) -> None:
    """Edge records in a partition of their own, whose first hour is cut at offset 10000 like a full batch is.

    The re-send of ``edge-boundary`` lands in ``…-10000-…``, which sorts before ``…-9997-…`` by name: the first
    arrival is decided by offset in both paths.
    """
    writer = BronzeWriter(lake)
    topic = TOPIC_BY_EVENT_TYPE[EventType.VITALS]
    boundary = [vitals("edge-boundary", timestamp="2026-01-02T00:05:00Z"), *EDGE_RECORDS[:2]]
    resend = [vitals("edge-boundary-resend", timestamp="2026-01-02T00:05:00Z"), *EDGE_RECORDS[2:]]
    first = [TransportRecord(9997 + i, BASE_MS + i, orjson.dumps(r)) for i, r in enumerate(boundary)]
    second = [TransportRecord(10000 + i, BASE_MS + 100 + i, orjson.dumps(r)) for i, r in enumerate(resend)]
    writer.write(topic, 7, first)
    writer.write(topic, 7, second)
    assert len([key for key in lake.keys(f"bronze/{topic}/date=2026-01-02/hour=00/") if f"{topic}-7-" in key]) == 2


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Lake]:
    """One generated lake, copied: the batch path runs on one copy, the Flink job on the other."""
    source = tmp_path_factory.mktemp("bronze")
    emit_to_lake(
        generate(GeneratorConfig(patients=40, seed=23, days=6, dirt=DIRT)), Lake(source), partitions=2, batch_size=400
    )
    write_edge_objects(Lake(source))
    batch_root, stream_root = tmp_path_factory.mktemp("batch") / "lake", tmp_path_factory.mktemp("stream") / "lake"
    shutil.copytree(source, batch_root)
    shutil.copytree(source, stream_root)
    bronze_to_silver(Lake(batch_root))
    python = stream_python()
    log_dir = tmp_path_factory.mktemp("flink-log")
    env = {**job_environment(python), "FLINK_LOG_DIR": str(log_dir)}
    args = ["--lake", str(stream_root), "--parallelism", "2", "--checkpoint-interval", "1"]
    done = subprocess.run(
        job_command(python, "bronze-to-silver", args),
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{done.stderr[-4000:]}\n(JVM log in {log_dir})"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["job_id"]
    return Lake(batch_root), Lake(stream_root)


def silver(lake: Lake, kind: EventType) -> pd.DataFrame:
    table = lake.read_parquet(silver_prefix(ENTITY_BY_EVENT_TYPE[kind]), schema=silver_schema(kind))
    return table.to_pandas().sort_values("event_id", kind="stable").reset_index(drop=True)


def batch_quarantine(lake: Lake, entity: str) -> list[tuple[str, str, int, tuple[str, ...]]]:
    entries = []
    for key in lake.keys(f"quarantine/{entity}/", suffix=".validation.jsonl"):
        stem = key.rpartition("/")[2].removesuffix(".validation.jsonl")
        for line in lake.read_bytes(key).splitlines():
            entry = orjson.loads(line)
            entries.append((str(entry["record"].get("event_id")), stem, entry["line"], tuple(entry["reasons"])))
    return sorted(entries)


def stream_quarantine(lake: Lake, entity: str) -> list[tuple[str, str, int, tuple[str, ...]]]:
    entries = []
    for key in lake.keys(f"quarantine/{entity}/"):
        assert not key.endswith(".jsonl"), key  # the batch path's files are not in this lake
        for line in lake.read_bytes(key).splitlines():
            entry = orjson.loads(line)
            origin = entry["origin"]
            entries.append(
                (str(entry["record"]["event_id"]), origin["object"], origin["line"], tuple(entry["reasons"]))
            )
    return sorted(entries)


@pytest.mark.parametrize("kind", list(EventType), ids=lambda kind: kind.value)
def test_silver_rows_equal_the_batch_path(lakes: tuple[Lake, Lake], kind: EventType) -> None:
    batch_lake, stream_lake = lakes
    batch, stream = silver(batch_lake, kind), silver(stream_lake, kind)
    assert len(batch) > 0
    assert list(stream["event_id"]) == list(batch["event_id"])
    pd.testing.assert_frame_equal(stream, batch, check_exact=False, rtol=1e-12, atol=1e-9)


def test_edge_records_are_judged_alike(lakes: tuple[Lake, Lake]) -> None:
    batch_lake, stream_lake = lakes
    kept = set(silver(stream_lake, EventType.VITALS)["event_id"])
    # The general parser's timestamps, numeric text and stripped whitespace are kept; the first arrival wins.
    assert {"edge-offset", "edge-millis", "edge-space", "edge-numeric-text", "edge-tabs", "edge-boundary"} <= kept
    assert {"edge-offset-resend", "edge-boundary-resend", "edge-nan", "edge-java-float"}.isdisjoint(kept)
    quarantined = {entry[0]: entry[3] for entry in stream_quarantine(stream_lake, "vitals")}
    assert quarantined["edge-boundary-resend"] == ("duplicate",)
    assert quarantined["edge-offset-canonical"] == ("duplicate",)
    assert quarantined["edge-hour25"] == ("invalid_timestamp",)
    assert quarantined["edge-inf"] == ("out_of_range:heart_rate",)
    assert quarantined["edge-blank-unit"] == ("unknown_unit:temperature",)
    assert stream_quarantine(stream_lake, "vitals") == batch_quarantine(batch_lake, "vitals")


@pytest.mark.parametrize("kind", list(EventType), ids=lambda kind: kind.value)
def test_quarantine_holds_the_same_records_and_reasons(lakes: tuple[Lake, Lake], kind: EventType) -> None:
    batch_lake, stream_lake = lakes
    entity = ENTITY_BY_EVENT_TYPE[kind]
    batch = batch_quarantine(batch_lake, entity)
    assert stream_quarantine(stream_lake, entity) == batch
    if kind is EventType.VITALS:
        reasons = {reason for entry in batch for reason in entry[3]}
        assert {"duplicate", "invalid_timestamp", "not_numeric:spo2", "out_of_range:heart_rate"} <= reasons


def test_silver_files_are_committed_parquet_of_the_silver_schema(lakes: tuple[Lake, Lake]) -> None:
    _, stream_lake = lakes
    keys = stream_lake.keys("silver/vitals/")
    assert keys
    assert all("/date=2026-" in key and key.rpartition("/")[2].startswith("part-") for key in keys)
    written = pq.read_schema(stream_lake.path(keys[0]))
    declared = silver_schema(EventType.VITALS)
    assert written.names == declared.names
    for field in declared:
        actual = written.field(field.name)
        assert actual.nullable == field.nullable, field.name
        # Flink's Parquet writer cannot mark an instant as UTC; readers apply the declared schema.
        expected = field.type if field.name != "timestamp" else pa.timestamp("ms")
        assert actual.type == expected, field.name


def test_gold_from_stream_silver_equals_gold_from_batch_silver(lakes: tuple[Lake, Lake]) -> None:
    batch_lake, stream_lake = lakes
    batch, stream = build_gold(batch_lake), build_gold(stream_lake)
    assert len(batch) > 0
    numeric = batch.select_dtypes(include=[np.number]).columns
    pd.testing.assert_frame_equal(stream.drop(columns=numeric), batch.drop(columns=numeric))
    np.testing.assert_allclose(stream[numeric].to_numpy(float), batch[numeric].to_numpy(float), rtol=1e-9)


def test_kafka_source_judges_the_records_of_each_partition_in_offset_order(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The Kafka source, bounded at the offsets current at start, against the batch validator on what was sent."""
    kinds = (EventType.VITALS, EventType.LAB_RESULT)
    stream = transport_stream(generate(GeneratorConfig(patients=20, seed=31, days=4, dirt=DIRT)))
    topics = tuple(TOPIC_BY_EVENT_TYPE[kind] for kind in kinds)
    # A new group at the topics' ends: the job reads only what this test sends.
    group = group_at_end(kafka_broker.bootstrap, f"flink-silver-{uuid.uuid4().hex[:8]}", topics)
    delivered: list[tuple[str, int, int, bytes]] = []

    def on_delivery(error: object, message: Message) -> None:
        assert error is None, error
        delivered.append((message.topic(), message.partition(), message.offset(), message.value()))

    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    sent = 0
    for topic, key, value in zip(stream.topics, stream.keys, stream.values, strict=True):
        if topic in topics:
            producer.produce(topic, value=value, key=str(key).encode(), on_delivery=on_delivery)
            producer.poll(0)
            sent += 1
    assert producer.flush(60) == 0
    assert len(delivered) == sent

    lake = Lake(tmp_path / "lake")
    python = stream_python()
    env = {**job_environment(python), "FLINK_LOG_DIR": str(tmp_path / "flink-log")}
    args = ["--lake", str(lake.root), "--source", "kafka", "--bootstrap", kafka_broker.bootstrap, "--group-id", group]
    args += ["--bounded", "--checkpoint-interval", "1", *(f"--entity={ENTITY_BY_EVENT_TYPE[kind]}" for kind in kinds)]
    done = subprocess.run(
        job_command(python, "bronze-to-silver", args), env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    assert done.returncode == 0, f"{done.stderr[-4000:]}\n(JVM log in {tmp_path / 'flink-log'})"

    for kind in kinds:
        entity = ENTITY_BY_EVENT_TYPE[kind]
        arrived = sorted((p, o, v) for t, p, o, v in delivered if t == TOPIC_BY_EVENT_TYPE[kind])
        records = [orjson.loads(value) for _, _, value in arrived]
        expected = validate(kind, pd.DataFrame.from_records(records))
        table = pa.Table.from_pandas(expected.valid, schema=silver_schema(kind), preserve_index=False)
        valid = table.replace_schema_metadata(None).to_pandas()
        valid = valid.sort_values("event_id", kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(silver(lake, kind), valid, check_exact=False, rtol=1e-12, atol=1e-9)
        rejected = sorted((str(records[row].get("event_id")), tuple(r)) for row, r in expected.rejected.items())
        entries = [
            orjson.loads(line)
            for key in lake.keys(f"quarantine/{entity}/")
            for line in lake.read_bytes(key).splitlines()
        ]
        assert sorted((str(e["record"]["event_id"]), tuple(e["reasons"])) for e in entries) == rejected
        assert all(set(e["origin"]) == {"partition", "offset"} for e in entries)
