"""Every prediction, written off the request path to Kafka or to the lake's bronze layer.

Requests only append to a bounded in-memory buffer; a writer thread drains it in batches. When the sink is down
the buffer holds what it can and counts what it drops: logging never blocks or fails a request. Records carry the
opaque sticky key and the model's features, never anything else about the patient.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson
from numpy.typing import NDArray

from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.store import Lake
from clinops.serving.metrics import ServerMetrics

logger = logging.getLogger(__name__)
# Records per write: bounds one lake object or one producer call.
MAX_BATCH = 5000


class Sink(Protocol):
    def write(self, records: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Write (timestamp_ms, key, value) records durably or raise; a retry rewrites the same batch."""

    def close(self) -> None: ...


class LakeSink:
    """Bronze objects named like any other topic's: ``bronze/<topic>/date=…/hour=…/<topic>-<writer>-<first>-<last>``.

    The partition number identifies this writer (host, process, start time) and offsets count its records, so
    replicas never overwrite each other and a retried batch overwrites its own object.
    """

    def __init__(self, lake: Lake, topic: str) -> None:
        self.writer = BronzeWriter(lake)
        self.topic = topic
        self.partition = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}".encode())
        self.next_offset = 0

    def write(self, records: Sequence[tuple[int, bytes, bytes]]) -> None:
        batch = [TransportRecord(self.next_offset + i, ts, value) for i, (ts, _, value) in enumerate(records)]
        self.writer.write(self.topic, self.partition, batch)
        self.next_offset += len(batch)

    def close(self) -> None:
        pass


class KafkaSink:
    """Produces to a Kafka topic keyed by the sticky key; librdkafka batches, retries and keeps order."""

    def __init__(self, bootstrap_servers: str, topic: str, buffer_size: int) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.failed = 0
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 20,
                "compression.type": "lz4",
                "queue.buffering.max.messages": buffer_size,
                "message.timeout.ms": 60_000,
            }
        )

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed += 1

    def write(self, records: Sequence[tuple[int, bytes, bytes]]) -> None:
        for ts, key, value in records:
            self.producer.produce(self.topic, value=value, key=key or None, timestamp=ts, on_delivery=self._delivered)
        self.producer.poll(0)

    def close(self) -> None:
        self.producer.flush(10)


@dataclass(frozen=True)
class _Batch:
    """One request's predictions as the handler had them: turned into records on the writer thread."""

    request_id: str
    timestamp_ms: int
    model: str
    versions: Sequence[str]
    variants: Sequence[str]
    keys: Sequence[str | None]
    feature_names: Sequence[str]
    X: NDArray[np.float64]
    scores: NDArray[np.float64]
    rows: Sequence[int]

    def records(self) -> list[tuple[int, bytes, bytes]]:
        out = []
        for i in self.rows:
            # NaN (a missing feature) is written as null: JSON has no NaN.
            features = dict(zip(self.feature_names, [None if v != v else v for v in self.X[i].tolist()], strict=True))
            key = self.keys[i]
            value = orjson.dumps(
                {
                    "request_id": self.request_id,
                    "row": i,
                    "timestamp_ms": self.timestamp_ms,
                    "model": self.model,
                    "model_version": self.versions[i],
                    "variant": self.variants[i],
                    "key": key,
                    "features": features,
                    "score": float(self.scores[i]),
                }
            )
            out.append((self.timestamp_ms, key.encode() if key else b"", value))
        return out


class PredictionLog:
    def __init__(self, sink: Sink, metrics: ServerMetrics, *, buffer_size: int, flush_seconds: float) -> None:
        self.sink = sink
        self.metrics = metrics
        self.buffer_size = buffer_size
        self.flush_seconds = flush_seconds
        # Requests append whole batches (one cheap tuple each); rows are counted against the bound.
        self._pending: deque[_Batch] = deque()
        self._pending_rows = 0
        self._retry: list[tuple[int, bytes, bytes]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def buffered(self) -> int:
        return self._pending_rows + len(self._retry)

    def submit(
        self,
        *,
        request_id: str,
        model: str,
        versions: Sequence[str],
        variants: Sequence[str],
        keys: Sequence[str | None],
        feature_names: Sequence[str],
        X: NDArray[np.float64],
        scores: NDArray[np.float64],
        sample_rate: float,
    ) -> None:
        """Queue the request's rows; never blocks. Rows beyond the buffer's room are dropped and counted.

        The handler's arrays are never written to after scoring, so holding them (not copies) is safe.
        """
        n = len(scores)
        rows: Sequence[int] = range(n) if sample_rate >= 1 else [i for i in range(n) if random.random() < sample_rate]
        with self._lock:
            room = max(self.buffer_size - self.buffered, 0)
            if len(rows) > room:
                self.metrics.log_dropped.labels("buffer_full").inc(len(rows) - room)
                rows = rows[:room]
            if not rows:
                return
            batch = _Batch(
                request_id, time.time_ns() // 1_000_000, model, versions, variants, keys, feature_names, X, scores, rows
            )
            self._pending.append(batch)
            self._pending_rows += len(rows)
            if self._pending_rows >= MAX_BATCH:
                self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._drain()
        self._drain()

    def _take(self) -> list[tuple[int, bytes, bytes]]:
        with self._lock:
            batches = list(self._pending)
            self._pending.clear()
            self._pending_rows = 0
            records, self._retry = self._retry, []
        for batch in batches:
            records.extend(batch.records())
        return records

    def _drain(self) -> None:
        records = self._take()
        for start in range(0, len(records), MAX_BATCH):
            chunk = records[start : start + MAX_BATCH]
            try:
                self.sink.write(chunk)
            except Exception as exc:  # any sink failure: keep the records for the next attempt, never raise
                rest = records[start:]
                logger.warning("Prediction log write failed, %d records kept for retry: %s", len(rest), exc)
                with self._lock:
                    room = max(self.buffer_size - self._pending_rows, 0)
                    kept = rest[:room]
                    if len(rest) > len(kept):
                        self.metrics.log_dropped.labels("buffer_full").inc(len(rest) - len(kept))
                    self._retry = kept
                break
            self.metrics.log_written.inc(len(chunk))
        self.metrics.log_buffered.set(self.buffered)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (one last attempt), then release the sink."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self.sink.close()
