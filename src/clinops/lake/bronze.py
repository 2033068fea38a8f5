"""Bronze layer: raw JSON-lines objects named by (topic, partition, first and last offset), malformed to quarantine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from clinops.data.schemas import ENTITY_BY_EVENT_TYPE, EVENT_TYPE_BY_TOPIC
from clinops.lake.layout import BronzeObject, bronze_object, bronze_prefix, parse_bronze_key, quarantine_key
from clinops.lake.store import Lake


class TransportRecord(NamedTuple):
    """One message as the transport (Kafka, or the embedded file transport) delivered it.

    A named tuple, not a frozen dataclass: ingestion builds one per message, and a tuple is built in a third of
    the time.
    """

    offset: int
    timestamp_ms: int
    value: bytes


@dataclass
class BronzeWriteResult:
    objects: list[str] = field(default_factory=list)
    records: int = 0
    quarantined: int = 0


def entity_for_topic(topic: str) -> str:
    kind = EVENT_TYPE_BY_TOPIC.get(topic)
    return ENTITY_BY_EVENT_TYPE[kind] if kind is not None else topic


# A clinical event is a few hundred bytes; anything this large is a faulty source, kept whole in quarantine.
MAX_RECORD_BYTES = 64 * 1024


def _malformed_reason(value: bytes) -> str | None:
    if len(value) > MAX_RECORD_BYTES:
        return f"oversized: {len(value)} bytes (limit {MAX_RECORD_BYTES})"
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return f"malformed_json: {exc.msg}"
    if not isinstance(parsed, dict):
        return "malformed_json: not a JSON object"
    return None


class BronzeWriter:
    """Writes one partition's batch of records; the same batch always yields the same objects.

    A batch is cut into runs of consecutive records of the same hour (by transport timestamp); each run becomes
    one object named by its first and last offset, so re-writing a batch after a crash overwrites, never duplicates.
    Callers commit transport offsets only after ``write`` returns: the objects are durable by then.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def write(self, topic: str, partition: int, records: Sequence[TransportRecord]) -> BronzeWriteResult:
        result = BronzeWriteResult()
        for run in _hour_runs(records):
            target = bronze_object(topic, partition, run[0].offset, run[-1].offset, run[0].timestamp_ms)
            good: list[bytes] = []
            bad: list[bytes] = []
            for record in run:
                # Lines are the values verbatim; a value must be one JSON object so a line is one record.
                reason = _malformed_reason(record.value)
                if reason is None:
                    good.append(orjson.dumps(orjson.loads(record.value)) if b"\n" in record.value else record.value)
                else:
                    bad.append(
                        orjson.dumps(
                            {
                                "reasons": [reason],
                                "offset": record.offset,
                                "raw": record.value.decode("utf-8", errors="replace"),
                            }
                        )
                    )
            if good:
                self.lake.write_bytes(target.key, b"\n".join(good) + b"\n")
                result.objects.append(target.key)
                result.records += len(good)
            if bad:
                self.lake.write_bytes(
                    quarantine_key(entity_for_topic(topic), target, "ingest"), b"\n".join(bad) + b"\n"
                )
                result.quarantined += len(bad)
        return result


def _hour_runs(records: Sequence[TransportRecord]) -> Iterator[Sequence[TransportRecord]]:
    start = 0
    for i in range(1, len(records) + 1):
        if i == len(records) or records[i].timestamp_ms // 3_600_000 != records[start].timestamp_ms // 3_600_000:
            yield records[start:i]
            start = i


def iter_bronze(lake: Lake, topic: str) -> Iterator[tuple[BronzeObject, bytes]]:
    """Every bronze object of a topic with its bytes, each partition's in offset order (its arrival order)."""
    # Not key order: within an hour, "…-10000-…" sorts before "…-9990-…".
    objects = sorted(
        (parse_bronze_key(key) for key in lake.keys(bronze_prefix(topic), suffix=".jsonl")),
        key=lambda obj: (obj.partition, obj.first_offset),
    )
    for obj in objects:
        yield obj, lake.read_bytes(obj.key)
