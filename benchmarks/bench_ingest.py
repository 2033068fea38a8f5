"""Ingestion events/s, producer → Kafka → bronze, against the naive design it replaces, on one real broker.

Ours: confluent-kafka, the producer sending pre-serialised JSON lines in lingering lz4 batches (idempotent,
acks=all), and the bronze consumer group taking batches of messages. The peer is how this is usually first
written: kafka-python, each event a dict serialised to JSON as it is sent, a consumer handling one message per
iteration and decoding it, with the same batching rule, the same bronze objects and a commit after each write.
Each stage is timed on its own (every event acknowledged; every event durable in bronze, from the consumer's
partition assignment) and the pipeline's rate is the slower stage's, as when both run at once. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer, TopicPartition

from clinops.data.emit import TransportStream, transport_stream
from clinops.data.generator import GeneratorConfig, generate
from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.store import Lake
from clinops.stack.kafka import KafkaBroker
from clinops.streaming.ingest import BronzeIngestor, IngestSettings
from clinops.streaming.producer import EventProducer

PARTITIONS = 3
BATCH_RECORDS = 5000
BATCH_SECONDS = 1.0


def _renamed(stream: TransportStream, prefix: str) -> TransportStream:
    topics = np.array([f"{prefix}{t}" for t in stream.topics.tolist()], dtype=object)
    return TransportStream(topics, stream.keys, stream.values, stream.times_ms, {})


def _ours_produce(bootstrap: str, stream: TransportStream) -> None:
    producer = EventProducer(bootstrap)
    producer.send(stream)
    producer.flush()


def _peer_produce(bootstrap: str, stream: TransportStream) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    events = [json.loads(v) for v in stream.values]
    # No record timestamps, as ours: simulated event times would age the log past retention as it is written.
    # Each event serialised as it is sent (kafka-python 3 deprecates plain functions as serializers).
    for topic, key, event in zip(stream.topics, stream.keys, events, strict=True):
        producer.send(topic, value=json.dumps(event).encode(), key=key.encode())
    producer.flush()
    producer.close()


class _TimedIngestor(BronzeIngestor):
    assigned_at = 0.0

    def _on_assign(self, consumer: Any, partitions: Any) -> None:
        super()._on_assign(consumer, partitions)
        self.assigned_at = self.assigned_at or time.perf_counter()


def _ours_ingest(bootstrap: str, lake: Lake, topics: tuple[str, ...], total: int) -> float:
    group = f"bench-{uuid.uuid4().hex[:6]}"
    settings = IngestSettings(topics=topics, group=group, batch_records=BATCH_RECORDS, batch_seconds=BATCH_SECONDS)
    ingestor = _TimedIngestor(bootstrap, lake, settings)
    stop = threading.Event()
    ingestor.run(stop=stop, on_batch=lambda r: stop.set() if r.records + r.quarantined >= total else None)
    return time.perf_counter() - ingestor.assigned_at


def _peer_ingest(bootstrap: str, lake: Lake, topics: tuple[str, ...], total: int) -> float:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-peer-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    # Partitions assigned by hand, offsets still committed to the group: kafka-python 3.0's group member is
    # revoked mid-run by Kafka 4 and never rejoins, which would stall the peer rather than measure it.
    consumer.assign([TopicPartition(topic, partition) for topic in topics for partition in range(PARTITIONS)])
    writer = BronzeWriter(lake)
    buffers: dict[tuple[str, int], list[TransportRecord]] = {}
    opened: dict[tuple[str, int], float] = {}
    done = 0

    def write(key: tuple[str, int]) -> None:
        nonlocal done
        batch = buffers.pop(key)
        lines = [TransportRecord(r.offset, r.timestamp_ms, orjson.dumps(json.loads(r.value))) for r in batch]
        writer.write(key[0], key[1], lines)
        consumer.commit({TopicPartition(*key): OffsetAndMetadata(batch[-1].offset + 1, "", -1)})
        done += len(batch)

    assigned_at = time.perf_counter()
    while done < total:
        for records in consumer.poll(timeout_ms=100, max_records=1).values():
            for message in records:
                key = (message.topic, message.partition)
                if key not in buffers:
                    buffers[key], opened[key] = [], time.monotonic()
                buffers[key].append(TransportRecord(message.offset, message.timestamp, message.value))
                if len(buffers[key]) >= BATCH_RECORDS:
                    write(key)
        for key in [k for k in buffers if time.monotonic() - opened[k] >= BATCH_SECONDS]:
            write(key)
    elapsed = time.perf_counter() - assigned_at
    consumer.close()
    return elapsed


def _in_kafka(bootstrap: str, topics: tuple[str, ...]) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex[:6]}"})
    try:
        spans = [
            consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10) for t in topics for p in range(PARTITIONS)
        ]
    finally:
        consumer.close()
    return sum(high - low for low, high in spans)


def run_side(name: str, broker: KafkaBroker, stream: TransportStream, root: Path) -> tuple[float, float]:
    """Seconds to produce every event (acknowledged), then seconds to write them all to bronze."""
    prefix = f"{name}-{uuid.uuid4().hex[:6]}-"
    renamed = _renamed(stream, prefix)
    topics = tuple(sorted(set(renamed.topics.tolist())))
    broker.create_topics(topics, partitions=PARTITIONS)
    produce, ingest = (_ours_produce, _ours_ingest) if name == "ours" else (_peer_produce, _peer_ingest)
    lake = Lake(root / name)
    started = time.perf_counter()
    produce(broker.bootstrap, renamed)
    produced = time.perf_counter() - started
    if (acknowledged := _in_kafka(broker.bootstrap, topics)) != len(stream):
        sys.exit(f"{name}: {acknowledged} events in Kafka after the producer's flush, expected {len(stream)}")
    # The consumer's clock starts at its partition assignment: a group join is not throughput.
    ingested = ingest(broker.bootstrap, lake, topics, len(stream))
    written = sum(len(lake.read_bytes(k).splitlines()) for k in lake.keys("bronze/", suffix=".jsonl"))
    if written != len(stream):
        sys.exit(f"{name}: {written} records in bronze, expected {len(stream)}")
    return produced, ingested


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # About 310k events: twelve partitions then fill some sixty 5,000-record batches, so the partial batches the time
    # rule closes at the end (up to a second) weigh little. At 100k events most partitions held one full batch and
    # one partial, and the rate measured that second's wait rather than sustained ingestion.
    parser.add_argument("--patients", type=int, default=3000, help="cohort size (about 100 events per patient)")
    args = parser.parse_args()
    stream = transport_stream(generate(GeneratorConfig(patients=args.patients, seed=3, days=30)))
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker(Path(tmp) / "kafka", topics=()) as broker:
        ours = run_side("ours", broker, stream, Path(tmp))
        peer = run_side("peer", broker, stream, Path(tmp))
    n = len(stream)
    # A pipeline runs both stages at once and goes at the slower one's pace: that is its events/s.
    ours_rate, peer_rate = n / max(ours), n / max(peer)
    result: dict[str, Any] = {
        "benchmark": "ingest_events_per_second",
        "events": n,
        "ours_events_per_s": round(ours_rate, 1),
        "peer_events_per_s": round(peer_rate, 1),
        "ours_produce_per_s": round(n / ours[0], 1),
        "ours_ingest_per_s": round(n / ours[1], 1),
        "peer_produce_per_s": round(n / peer[0], 1),
        "peer_ingest_per_s": round(n / peer[1], 1),
        "ratio": round(ours_rate / peer_rate, 2),
        "peer": "kafka-python, one JSON message at a time, same batching rule",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
