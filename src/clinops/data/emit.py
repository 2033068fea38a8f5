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


@dataclass(frozen=True)
class TransportStream:
    """Every raw event of a cohort in send order (all topics merged by transport time), ready for a transport."""

    topics: NDArray[Any]
    keys: NDArray[Any]
    values: list[bytes]
    times_ms: NDArray[np.int64]
    records: dict[str, int]

    def __len__(self) -> int:
        return len(self.values)


def transport_stream(cohort: Cohort) -> TransportStream:
    """The cohort's event streams as one time-ordered sequence of (topic, key, value, time) messages.

    Keys are patient ids (DESIGN §6); a record that lost its patient id is keyed by its event id so it still
    has a stable partition and reaches quarantine like any other.
    """
    topics: list[NDArray[Any]] = []
    keys: list[NDArray[Any]] = []
    times: list[NDArray[Any]] = []
    lines: list[bytes] = []
    records: dict[str, int] = {}
    for kind, frame in _raw_frames(cohort):
        topic = TOPIC_BY_EVENT_TYPE[kind]
        records[topic] = len(frame)
        topics.append(np.full(len(frame), topic, dtype=object))
        keys.append(frame["patient_id"].where(frame["patient_id"].notna(), frame["event_id"]).to_numpy(dtype=object))
        times.append(frame[RECORD_TIME_COLUMN].to_numpy(dtype=np.int64))
        lines.extend(_json_lines(frame))
    order = np.argsort(np.concatenate(times), kind="stable")
    return TransportStream(
        topics=np.concatenate(topics)[order],
        keys=np.concatenate(keys)[order],
        values=[lines[i] for i in order.tolist()],
        times_ms=np.concatenate(times)[order],
        records=records,
    )


def emit_jsonl(cohort: Cohort, out: IO[str]) -> EmitReport:
    """The raw event streams as JSON lines in send order (all topics merged by transport time)."""
    stream = transport_stream(cohort)
    for value in stream.values:
        out.write(value.decode())
        out.write("\n")
    return EmitReport(records=stream.records)
