"""Send a generated cohort where a hospital's systems would: event streams to bronze, reference data to silver."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from clinops.data.dirt import RECORD_TIME_COLUMN, raw_records
from clinops.data.generator import LATENT_COLUMNS, Cohort
from clinops.data.schemas import COMORBIDITIES, TOPIC_BY_EVENT_TYPE, EventType
from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.layout import SILVER, TRUTH, table_key
from clinops.lake.store import Lake

PATIENT_COLUMNS = ("patient_id", "sex", "age", "age_band", *COMORBIDITIES, "comorbidity_count")
ENCOUNTER_COLUMNS = ("encounter_id", "patient_id", "admit_time", "discharge_time", "los_hours")
OUTCOME_COLUMNS = ("encounter_id", "readmitted_30d", "adverse_event_24h")


@dataclass
class EmitReport:
    records: dict[str, int] = field(default_factory=dict)
    bronze_objects: int = 0
    quarantined_at_ingest: int = 0


def partition_for(keys: pd.Series, partitions: int) -> NDArray[Any]:
    """Partition by key like librdkafka's ``consistent`` partitioner (CRC32 of the key bytes)."""
    return np.array([zlib.crc32(str(k).encode()) % partitions for k in keys.tolist()], dtype=np.int64)


def _raw_frames(cohort: Cohort) -> Iterator[tuple[EventType, pd.DataFrame]]:
    # Dirt is drawn from its own seed stream, so changing a dirt rate never changes the clean cohort.
    rng = np.random.default_rng(np.random.SeedSequence([cohort.config.seed, 1]))
    for kind in EventType:
        yield kind, raw_records(cohort, kind, rng)


def _json_lines(frame: pd.DataFrame) -> list[bytes]:
    body = frame.drop(columns=[RECORD_TIME_COLUMN]).to_json(orient="records", lines=True, double_precision=6)
    return [line.encode() for line in body.splitlines()]


def emit_to_lake(
    cohort: Cohort,
    lake: Lake,
    *,
    partitions: int = 3,
    batch_size: int = 5000,
    progress: Callable[[str, int], None] | None = None,
) -> EmitReport:
    """Write the cohort's raw event streams to bronze (as if ingested from Kafka) and its reference data to silver."""
    report = EmitReport()
    writer = BronzeWriter(lake)
    for kind, frame in _raw_frames(cohort):
        topic = TOPIC_BY_EVENT_TYPE[kind]
        keys = frame["patient_id"].where(frame["patient_id"].notna(), frame["event_id"])
        frame_partition = partition_for(keys, partitions)
        values = _json_lines(frame)
        times = frame[RECORD_TIME_COLUMN].to_numpy()
        for partition in range(partitions):
            rows = np.flatnonzero(frame_partition == partition)
            records = [
                TransportRecord(offset=offset, timestamp_ms=int(times[row]), value=values[row])
                for offset, row in enumerate(rows.tolist())
            ]
            for start in range(0, len(records), batch_size):
                result = writer.write(topic, partition, records[start : start + batch_size])
                report.bronze_objects += len(result.objects)
                report.quarantined_at_ingest += result.quarantined
        report.records[topic] = len(frame)
        if progress:
            progress(topic, len(frame))
    write_reference_tables(cohort, lake)
    return report


def write_reference_tables(cohort: Cohort, lake: Lake) -> None:
    """Master data (demographics, admissions) and outcomes arrive clean from the EHR, straight to silver."""
    enc = cohort.encounters
    tables = {
        table_key(SILVER, "patients"): cohort.patients[list(PATIENT_COLUMNS)],
        table_key(SILVER, "encounters"): enc[list(ENCOUNTER_COLUMNS)],
        table_key(SILVER, "outcomes"): enc[list(OUTCOME_COLUMNS)],
        table_key(TRUTH, "oracle"): enc[["encounter_id", "patient_id", *LATENT_COLUMNS]],
    }
    for key, frame in tables.items():
        lake.write_parquet(key, pa.Table.from_pandas(frame, preserve_index=False))


def emit_jsonl(cohort: Cohort, out: IO[str]) -> EmitReport:
    """The raw event streams as JSON lines in send order (all topics merged by transport time)."""
    report = EmitReport()
    times: list[NDArray[Any]] = []
    lines: list[bytes] = []
    for kind, frame in _raw_frames(cohort):
        report.records[TOPIC_BY_EVENT_TYPE[kind]] = len(frame)
        times.append(frame[RECORD_TIME_COLUMN].to_numpy())
        lines.extend(_json_lines(frame))
    for index in np.argsort(np.concatenate(times), kind="stable").tolist():
        out.write(lines[index].decode())
        out.write("\n")
    return report
