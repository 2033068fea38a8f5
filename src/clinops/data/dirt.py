"""Render clean events as the raw JSON records sources send, with the realistic faults of ``DirtRates``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clinops.data.generator import Cohort, DirtRates, opaque_ids
from clinops.data.schemas import (
    CREATININE_UMOL_TO_MGDL,
    GLUCOSE_MMOL_TO_MGDL,
    LABS_BY_NAME,
    VITAL_SIGNS,
    VITALS_BY_NAME,
    EventType,
)

RECORD_TIME_COLUMN = "_record_time_ms"
NUMERIC_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.VITALS: tuple(m.name for m in VITAL_SIGNS),
    EventType.LAB_RESULT: ("value",),
    EventType.MEDICATION: ("dose",),
    EventType.ADVERSE_EVENT: ("grade",),
}
_GARBAGE_TEXT = np.array(["n/a", "see note", "pending", "--", "?"], dtype=object)
_GARBAGE_TIMESTAMPS = np.array(["2026-02-30T25:61:00Z", "yesterday", "0000-00-00", "12/31/2026 08:00"], dtype=object)
_REQUIRED_TO_DROP = ("patient_id", "encounter_id", "timestamp", "source")


def _pick(rng: np.random.Generator, n: int, rate: float) -> NDArray[Any]:
    return np.flatnonzero(rng.random(n) < rate)


def _out_of_range(kind: EventType, frame: pd.DataFrame, field: str, rows: NDArray[Any]) -> NDArray[Any]:
    limit: float | NDArray[Any]
    if kind is EventType.VITALS:
        limit = VITALS_BY_NAME[field].hard_max
    elif kind is EventType.LAB_RESULT:
        limit = np.array([LABS_BY_NAME[t].hard_max for t in frame["test"].to_numpy()[rows]])
    elif kind is EventType.MEDICATION:
        return np.asarray(-frame[field].to_numpy()[rows], dtype=float)  # negative dose
    else:
        return np.full(len(rows), 9.0)  # no grade 9 exists
    # Typical transcription slip: an extra digit (×10), always beyond the hard limit.
    return np.asarray(np.maximum(frame[field].to_numpy(dtype=float)[rows] * 10, limit * 1.5 + 1))


def _alternative_units(kind: EventType, frame: pd.DataFrame, rows: NDArray[Any]) -> None:
    if kind is EventType.VITALS:
        values = frame["temperature"].to_numpy(dtype=float)[rows]
        frame.loc[rows, "temperature"] = np.round(values * 9 / 5 + 32, 1)
        frame.loc[rows, "temperature_unit"] = "F"
    elif kind is EventType.LAB_RESULT:
        tests = frame["test"].to_numpy()[rows]
        values = frame["value"].to_numpy(dtype=float)[rows]
        glucose = rows[tests == "glucose"]
        frame.loc[glucose, "value"] = np.round(values[tests == "glucose"] / GLUCOSE_MMOL_TO_MGDL, 2)
        frame.loc[glucose, "unit"] = "mmol/L"
        creatinine = rows[tests == "creatinine"]
        frame.loc[creatinine, "value"] = np.round(values[tests == "creatinine"] / CREATININE_UMOL_TO_MGDL, 0)
        frame.loc[creatinine, "unit"] = "umol/L"
    elif kind is EventType.MEDICATION:
        milligrams = rows[frame["dose_unit"].to_numpy()[rows] == "mg"]
        frame.loc[milligrams, "dose"] = frame["dose"].to_numpy(dtype=float)[milligrams] / 1000
        frame.loc[milligrams, "dose_unit"] = "g"


def raw_records(cohort: Cohort, kind: EventType, rng: np.random.Generator) -> pd.DataFrame:
    """Raw records of one event type in send order, as object columns, with faults injected.

    ``_record_time_ms`` is the transport timestamp (Kafka record time): the true event time even when the
    payload's own timestamp is broken, so transport partitioning never depends on payload validity.
    """
    clean = cohort.events[kind]
    dirt: DirtRates = cohort.config.dirt
    frame = clean.astype(object)
    seconds = clean["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    frame["timestamp"] = np.char.add(np.datetime_as_string(seconds, unit="s"), "Z").astype(object)
    frame[RECORD_TIME_COLUMN] = clean["timestamp"].astype("datetime64[ms, UTC]").astype(np.int64)
    n = len(frame)
    numeric = NUMERIC_FIELDS[kind]

    if kind is EventType.VITALS:
        rows = _pick(rng, n, dirt.missing_measurement)
        fields = rng.choice(numeric, size=len(rows))
        for field in numeric:
            frame.loc[rows[fields == field], field] = None
        rows = _pick(rng, n, dirt.unlabelled_unit)
        frame.loc[rows, "temperature"] = np.round(clean["temperature"].to_numpy()[rows] * 9 / 5 + 32, 1)
        frame.loc[rows, "temperature_unit"] = None
    _alternative_units(kind, frame, _pick(rng, n, dirt.alternative_unit))

    rows = _pick(rng, n, dirt.out_of_range)
    fields = rng.choice(numeric, size=len(rows))
    for field in numeric:
        chosen = rows[fields == field]
        valid = chosen[pd.notna(frame[field].to_numpy()[chosen])]
        frame.loc[valid, field] = _out_of_range(kind, frame, field, valid)
    rows = _pick(rng, n, dirt.not_numeric)
    fields = rng.choice(numeric, size=len(rows))
    for field in numeric:
        chosen = rows[fields == field]
        frame.loc[chosen, field] = rng.choice(_GARBAGE_TEXT, size=len(chosen))
    rows = _pick(rng, n, dirt.missing_field)
    fields = rng.choice(_REQUIRED_TO_DROP, size=len(rows))
    for field in _REQUIRED_TO_DROP:
        frame.loc[rows[fields == field], field] = None
    rows = _pick(rng, n, dirt.bad_timestamp)
    frame.loc[rows, "timestamp"] = rng.choice(_GARBAGE_TIMESTAMPS, size=len(rows))

    # A source that re-sends a record (lost acknowledgement) gives it a new id and sends it a little later.
    rows = _pick(rng, n, dirt.duplicate)
    resent = frame.iloc[rows].copy()
    resent["event_id"] = opaque_ids(rng, "ev", len(rows))
    resent[RECORD_TIME_COLUMN] = resent[RECORD_TIME_COLUMN] + rng.integers(1_000, 120_000, len(rows))
    frame = pd.concat([frame, resent], ignore_index=True)
    return frame.sort_values(RECORD_TIME_COLUMN, kind="stable").reset_index(drop=True)
