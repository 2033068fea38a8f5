"""Kafka → bronze: a consumer group that writes deterministic objects and commits offsets only once they are durable."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from clinops.data.schemas import TOPIC_BY_EVENT_TYPE
from clinops.errors import ClinopsError
from clinops.lake.bronze import BronzeWriter, TransportRecord, entity_for_topic
from clinops.lake.layout import BRONZE, QUARANTINE, bronze_object
from clinops.lake.store import Lake
from clinops.streaming.metrics import IngestMetrics

log = logging.getLogger(__name__)

EVENT_TOPICS = tuple(TOPIC_BY_EVENT_TYPE.values())
DEFAULT_GROUP = "clinops-bronze"


class IngestError(ClinopsError):
    """The consumer cannot reach Kafka or the lake rejected a write."""


@dataclass(frozen=True)
class IngestSettings:
    """The batching rule: a partition's batch is written when it holds ``batch_records`` or is ``batch_seconds`` old."""

    topics: tuple[str, ...] = EVENT_TOPICS
    group: str = DEFAULT_GROUP
    batch_records: int = 5000
    batch_seconds: float = 5.0
    # Static group membership (e.g. the pod name of a StatefulSet): a restarted member takes its partitions back
    # at once instead of waiting out the dead member's session.
    instance_id: str | None = None


@dataclass
class IngestReport:
    records: int = 0
    quarantined: int = 0
    objects: int = 0
    batches: int = 0
    rewritten_batches: int = 0


@dataclass
class _PartitionBuffer:
    records: list[TransportRecord] = field(default_factory=list)
    opened: float = 0.0
    # Set on assignment: the previous owner may have written objects it never committed. Until a batch start
    # finds no such object, batches end exactly where the previous owner's did, so rewriting them overwrites.
    recovering: bool = True
    previous_cut: int | None = None  # -1: no earlier object starts at the buffer's first offset
    at_end: bool = False


# How long a commit may wait for the group coordinator to come back (a broker restart takes seconds).
COMMIT_RETRY_S = 120.0
# What a commit meets while the coordinator restarts or moves; librdkafka does not flag all of them retriable.
COORDINATOR_MOVING = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._WAIT_COORD,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
    }
)


class BronzeIngestor:
    """One member of the bronze consumer group.

    Exactly-once into bronze without transactions: an object's name is a function of its records (topic,
    partition, first and last offset, hour), offsets are committed only after the object is written, and a
    restarted member re-cuts uncommitted records at the previous owner's boundaries, so a crash at any point
    leads to an identical overwrite, never a second copy.
    """

    def __init__(
        self,
        bootstrap: str,
        lake: Lake,
        settings: IngestSettings | None = None,
        *,
        metrics: IngestMetrics | None = None,
        consumer_overrides: dict[str, object] | None = None,
    ) -> None:
        self.lake = lake
        self.settings = settings or IngestSettings()
        self.metrics = metrics or IngestMetrics()
        self.report = IngestReport()
        self._writer = BronzeWriter(lake)
        self._buffers: dict[tuple[str, int], _PartitionBuffer] = {}
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": self.settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
                "statistics.interval.ms": 5000,
                "stats_cb": self._on_stats,
                **({"group.instance.id": self.settings.instance_id} if self.settings.instance_id else {}),
                # Fewer, fuller fetches: a busy topic fills 1 MB at once, and a quiet one waits at most the
                # broker's wait (100 ms), far below a batch's time limit.
                "fetch.min.bytes": 1_000_000,
                "fetch.wait.max.ms": 100,
                "fetch.max.bytes": 52_428_800,
                "max.partition.fetch.bytes": 10_485_760,
                **(consumer_overrides or {}),
            }
        )

    # --- consumer group callbacks ---------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._buffers[(tp.topic, tp.partition)] = _PartitionBuffer()
        log.info("Assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Write and commit what we hold while we still own the partitions; the next owner starts after it.
        for tp in partitions:
            self._flush((tp.topic, tp.partition))
            self._buffers.pop((tp.topic, tp.partition), None)

    def _on_stats(self, payload: str) -> None:
        stats = json.loads(payload)
        for topic, info in stats.get("topics", {}).items():
            for partition, values in info.get("partitions", {}).items():
                lag = values.get("consumer_lag", -1)
                if int(partition) >= 0 and lag >= 0:
                    self.metrics.lag.labels(topic, partition).set(lag)

    # --- batches ----------------------------------------------------------------------------------------------

    def _previous_cut(self, topic: str, partition: int, first: TransportRecord) -> int:
        """Last offset of an object some earlier owner wrote starting at ``first`` (bronze or quarantine)."""
        target = bronze_object(topic, partition, first.offset, first.offset, first.timestamp_ms)
        stem = f"{topic}-{partition}-{first.offset}-"
        hour = f"date={target.date}/hour={target.hour:02d}/"
        for prefix in (f"{BRONZE}/{topic}/{hour}", f"{QUARANTINE}/{entity_for_topic(topic)}/{hour}"):
            for key in self.lake.keys(prefix):
                name = key.rpartition("/")[2]
                if name.startswith(stem):
                    return int(name.removeprefix(stem).partition(".")[0])
        return -1

    def _flush(self, key: tuple[str, int]) -> None:
        buffer = self._buffers.get(key)
        while buffer is not None and buffer.records:
            records = buffer.records
            cut = len(records)
            if buffer.recovering:
                if buffer.previous_cut is None:
                    buffer.previous_cut = self._previous_cut(*key, records[0])
                if buffer.previous_cut < 0:
                    buffer.recovering = False
                elif records[-1].offset < buffer.previous_cut:
                    return  # the rest of the earlier batch has not arrived yet
                else:
                    cut = next(i for i, r in enumerate(records) if r.offset >= buffer.previous_cut) + 1
                    buffer.previous_cut = None
                    self.report.rewritten_batches += 1
            self._write(key, records[:cut])
            buffer.records = records[cut:]
            buffer.opened = time.monotonic()
            if not buffer.recovering:
                return

    def _write(self, key: tuple[str, int], batch: Sequence[TransportRecord]) -> None:
        topic, partition = key
        started = time.perf_counter()
        result = self._writer.write(topic, partition, batch)
        # Only now, with the objects durable, may the group move past these records.
        self._commit(TopicPartition(topic, partition, batch[-1].offset + 1))
        self.metrics.batch_seconds.labels(topic).observe(time.perf_counter() - started)
        self.metrics.records.labels(topic).inc(result.records)
        self.metrics.quarantined.labels(topic).inc(result.quarantined)
        self.metrics.bytes.labels(topic).inc(sum(len(r.value) for r in batch))
        self.report.records += result.records
        self.report.quarantined += result.quarantined
        self.report.objects += len(result.objects)
        self.report.batches += 1

    def _commit(self, offset: TopicPartition) -> None:
        """Commit synchronously, waiting out the states a restarting broker reports as retriable.

        Right after a broker restart the group coordinator is still loading its offsets; giving up then would stop
        ingestion (the records would be re-written, not lost, but the member would exit).
        """
        deadline = time.monotonic() + COMMIT_RETRY_S
        pause = 0.05
        while True:
            try:
                self._consumer.commit(offsets=[offset], asynchronous=False)
                return
            except KafkaException as exc:
                error = exc.args[0]
                transient = error.retriable() or error.code() in COORDINATOR_MOVING
                if not transient or time.monotonic() + pause > deadline:
                    raise
                log.info("Commit of %s[%d] deferred: %s", offset.topic, offset.partition, error.str())
                time.sleep(pause)  # backoff between attempts, as the protocol asks of a retriable error
                pause = min(pause * 2, 2.0)

    def _accept(self, messages: list[Message]) -> None:
        """Buffer a consumed batch per partition, writing every buffer that reaches the batch size.

        The hottest loop of ingestion (once per message): hence the locals and no call per message of our own.
        """
        buffers, limit, record, now = self._buffers, self.settings.batch_records, TransportRecord, time.monotonic()
        for message in messages:
            key = (message.topic() or "", message.partition() or 0)
            buffer = buffers.get(key)
            if buffer is None:
                buffer = buffers[key] = _PartitionBuffer()
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    buffer.at_end = True
                    continue
                raise IngestError(f"consuming {key[0]}[{key[1]}] failed: {error}")
            records = buffer.records
            if not records:
                buffer.opened = now
            buffer.at_end = False
            records.append(record(message.offset() or 0, message.timestamp()[1], message.value() or b""))
            if len(records) >= limit:
                self._flush(key)

    def _all_caught_up(self) -> bool:
        return bool(self._buffers) and all(b.at_end and not b.records for b in self._buffers.values())

    # --- the loop ---------------------------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        exit_at_end: bool = False,
        on_batch: Callable[[IngestReport], None] | None = None,
    ) -> IngestReport:
        """Consume until ``stop`` is set (or, with ``exit_at_end``, until every partition is written to its end)."""
        settings = self.settings
        stop = stop or threading.Event()
        poll_timeout = min(0.5, settings.batch_seconds)
        try:
            self._consumer.subscribe(list(settings.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
            while not stop.is_set():
                batches = self.report.batches
                self._accept(self._consumer.consume(num_messages=settings.batch_records, timeout=poll_timeout))
                now = time.monotonic()
                for key, buffer in list(self._buffers.items()):
                    due = now - buffer.opened >= settings.batch_seconds or (exit_at_end and buffer.at_end)
                    if buffer.records and due:
                        self._flush(key)
                if on_batch and self.report.batches != batches:
                    on_batch(self.report)
                if exit_at_end and self._all_caught_up():
                    break
            for key in list(self._buffers):
                self._flush(key)
        except KafkaException as exc:
            raise IngestError(f"Kafka: {exc.args[0]}") from exc
        finally:
            self._consumer.close()
        return self.report
