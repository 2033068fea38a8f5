"""Batch bronze → silver: parse, validate and standardise every bronze object; invalid records to quarantine."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from clinops.data.schemas import ENTITY_BY_EVENT_TYPE, TOPIC_BY_EVENT_TYPE, EventType
from clinops.data.validation import ENVELOPE_COLUMNS, QUALITY_COLUMNS, SILVER_COLUMNS, validate
from clinops.lake.bronze import iter_bronze
from clinops.lake.layout import BronzeObject, quarantine_key, silver_partition_key, silver_prefix
from clinops.lake.store import Lake

_TYPED_FIELDS: dict[str, pa.DataType] = {
    "test": pa.string(),
    "unit": pa.string(),
    "drug_class": pa.string(),
    "drug": pa.string(),
    "dose_unit": pa.string(),
    "route": pa.string(),
    "kind": pa.string(),
    "grade": pa.int8(),
}


def silver_schema(kind: EventType) -> pa.Schema:
    envelope = [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("encounter_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
    typed = [pa.field(name, _TYPED_FIELDS.get(name, pa.float64())) for name in SILVER_COLUMNS[kind]]
    quality = [
        pa.field("quality_score", pa.float64(), nullable=False),
        pa.field("unit_converted", pa.bool_(), nullable=False),
        pa.field("unit_inferred", pa.bool_(), nullable=False),
    ]
    assert [f.name for f in envelope] == list(ENVELOPE_COLUMNS)
    assert [f.name for f in quality] == list(QUALITY_COLUMNS)
    return pa.schema(envelope + typed + quality)


@dataclass
class EntityReport:
    entity: str
    bronze_objects: int = 0
    records: int = 0
    valid: int = 0
    quarantined: int = 0
    replayed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    partitions: list[str] = field(default_factory=list)


@dataclass
class SilverReport:
    entities: dict[str, EntityReport] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.entities.values())

    def reason_totals(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for report in self.entities.values():
            for reason, count in report.reasons.items():
                totals[reason] += count
        return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _parse(
    objects: list[tuple[BronzeObject, bytes]],
) -> tuple[pd.DataFrame, list[tuple[int, int]], list[bytes]]:
    records: list[dict[str, object]] = []
    origins: list[tuple[int, int]] = []
    lines: list[bytes] = []
    for index, (_, data) in enumerate(objects):
        for line_no, line in enumerate(data.splitlines()):
            if not line.strip():
                continue
            records.append(orjson.loads(line))
            origins.append((index, line_no))
            lines.append(line)
    return pd.DataFrame.from_records(records), origins, lines


def _write_partitions(lake: Lake, kind: EventType, entity: str, valid: pd.DataFrame) -> list[str]:
    schema = silver_schema(kind)
    keys: list[str] = []
    if not valid.empty:
        valid = valid.sort_values(["timestamp", "event_id"], kind="stable")
        dates = np.datetime_as_string(
            valid["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[D]"), unit="D"
        )
        for date, part in valid.groupby(dates, sort=True):
            key = silver_partition_key(entity, str(date))
            lake.write_parquet(key, pa.Table.from_pandas(part, schema=schema, preserve_index=False))
            keys.append(key)
    # A full rebuild: partitions no longer produced are removed only after the new ones are in place.
    for stale in set(lake.keys(silver_prefix(entity))) - set(keys):
        lake.fs.delete_file(lake.path(stale))
    return keys


def _write_quarantine(
    lake: Lake,
    entity: str,
    objects: list[tuple[BronzeObject, bytes]],
    origins: list[tuple[int, int]],
    lines: list[bytes],
    rejected: dict[int, list[str]],
) -> None:
    by_object: dict[int, list[bytes]] = defaultdict(list)
    for row in sorted(rejected):
        object_index, line_no = origins[row]
        entry = {"reasons": rejected[row], "line": line_no, "record": orjson.Fragment(lines[row])}
        by_object[object_index].append(orjson.dumps(entry))
    for object_index, entries in by_object.items():
        origin = objects[object_index][0]
        lake.write_bytes(quarantine_key(entity, origin, "validation"), b"\n".join(entries) + b"\n")


def bronze_to_silver(
    lake: Lake,
    kinds: tuple[EventType, ...] = tuple(EventType),
    progress: Callable[[str], None] | None = None,
) -> SilverReport:
    """Rebuild silver from every bronze object; rerunning it on the same bronze yields the same bytes."""
    report = SilverReport()
    for kind in kinds:
        topic, entity = TOPIC_BY_EVENT_TYPE[kind], ENTITY_BY_EVENT_TYPE[kind]
        if progress:
            progress(entity)
        objects = list(iter_bronze(lake, topic))
        entity_report = EntityReport(entity=entity, bronze_objects=len(objects))
        report.entities[entity] = entity_report
        if not objects:
            continue
        frame, origins, lines = _parse(objects)
        result = validate(kind, frame)
        _write_quarantine(lake, entity, objects, origins, lines, result.rejected)
        entity_report.partitions = _write_partitions(lake, kind, entity, result.valid)
        entity_report.records = len(frame)
        entity_report.valid = len(result.valid)
        entity_report.quarantined = len(result.rejected)
        entity_report.replayed = result.replayed
        entity_report.reasons = result.reason_counts
    return report
