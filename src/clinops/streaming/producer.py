"""Kafka producer of the synthetic sources: generated events to their topics, keyed by patient, idempotent."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from clinops.data.emit import TransportStream, transport_stream
from clinops.data.generator import GeneratorConfig, generate
from clinops.errors import ClinopsError

# Throughput settings: the broker acknowledges whole batches, so large lingering batches (lz4) carry the rate;
# idempotence keeps retries after a broker restart from writing a record twice.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 300_000,
    # A Python callback per acknowledged message costs more than producing it; failures are reported one by one
    # and everything else is acknowledged once flush() returns with nothing outstanding.
    "delivery.report.only.error": True,
}
# How many messages go out between looks at delivery reports and the rate limit.
_PACE_EVERY = 1000


class ProduceError(ClinopsError):
    """The broker could not be reached, or not every message was acknowledged in time."""


@dataclass
class ProduceReport:
    sent: Counter[str] = field(default_factory=Counter)  # handed to the client, per topic
    failed: Counter[str] = field(default_factory=Counter)
    pending: int = 0  # queued or in flight, not yet acknowledged or failed
    first_error: str | None = None
    seconds: float = 0.0

    @property
    def produced(self) -> int:
        return sum(self.sent.values())

    @property
    def delivered(self) -> Counter[str]:
        """Acknowledged messages per topic: exact once nothing is pending (after a flush)."""
        return self.sent - self.failed

    @property
    def delivered_total(self) -> int:
        return self.produced - self.pending - self.failed_total

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def rate(self) -> float:
        return self.delivered_total / self.seconds if self.seconds else 0.0


def cohort_streams(config: GeneratorConfig) -> Iterator[TransportStream]:
    """Cohort after cohort (seed, seed+1, …) for as long as a producer runs: ids never repeat across cohorts."""
    seed = config.seed
    while True:
        yield transport_stream(generate(config.model_copy(update={"seed": seed})))
        seed += 1


class EventProducer:
    """Sends transport streams to Kafka and counts what the broker acknowledged, per topic."""

    def __init__(self, bootstrap: str, *, overrides: Mapping[str, Any] | None = None) -> None:
        self.report = ProduceReport()
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS, **(overrides or {}), "error_cb": self._on_error}
        )

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self.report.first_error = self.report.first_error or str(error)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.report.failed[message.topic() or ""] += 1
            self.report.first_error = self.report.first_error or str(error)

    def send(
        self,
        stream: TransportStream,
        *,
        rate: float | None = None,
        deadline: float | None = None,
        progress: Callable[[ProduceReport], None] | None = None,
    ) -> bool:
        """Queue the stream's messages, at most ``rate`` per second; False when ``deadline`` cut it short."""
        produce = self._producer.produce
        poll = self._producer.poll
        start = time.monotonic()
        # Messages carry no timestamp of ours: Kafka stamps them as sent, like a live source's. A simulated event
        # time (months back) as the record time would make the broker roll and expire segments at once.
        topics, keys = stream.topics.tolist(), stream.keys.tolist()
        counted = queued = 0
        try:
            for value in stream.values:
                while True:
                    try:
                        produce(topics[queued], value, keys[queued], on_delivery=self._on_delivery)
                        break
                    except BufferError:
                        # The local queue is full: serve delivery reports until the broker has drained some of it.
                        poll(0.05)
                queued += 1
                if queued % _PACE_EVERY == 0:
                    poll(0)
                    self.report.sent.update(topics[counted:queued])
                    counted, self.report.pending = queued, len(self._producer)
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        return False
                    if rate:
                        ahead = start + queued / rate - now
                        if ahead > 0:
                            time.sleep(ahead)  # pacing to the requested rate, not waiting on anything
                    if progress:
                        progress(self.report)
            return True
        finally:
            self.report.sent.update(topics[counted:queued])

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # The client holds our callbacks and we hold it: drop our end so it is destroyed now, not at some later
        # garbage collection (a forgotten client keeps reconnecting to a broker that may be long gone).
        self._producer = None  # type: ignore[assignment]

    def flush(self, timeout: float = 120.0) -> ProduceReport:
        """Wait for every queued message's acknowledgement; unacknowledged ones are an error."""
        remaining = self.report.pending = self._producer.flush(timeout)
        if remaining:
            raise ProduceError(
                f"{remaining} messages were not acknowledged within {timeout:.0f}s"
                + (f": {self.report.first_error}" if self.report.first_error else "")
            )
        return self.report


def produce_events(
    bootstrap: str,
    config: GeneratorConfig,
    *,
    rate: float | None = None,
    duration: float | None = None,
    progress: Callable[[ProduceReport], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ProduceReport:
    """Generated events to their topics: one cohort, or cohort after cohort until ``duration`` seconds passed."""
    started = time.monotonic()
    deadline = started + duration if duration else None
    with EventProducer(bootstrap, overrides=overrides) as producer:
        try:
            for stream in cohort_streams(config):
                finished = producer.send(stream, rate=rate, deadline=deadline, progress=progress)
                if not finished or deadline is None or time.monotonic() >= deadline:
                    break
            report = producer.flush()
        except KafkaException as exc:
            raise ProduceError(f"producing to {bootstrap} failed: {exc.args[0]}") from exc
    report.seconds = time.monotonic() - started
    return report
