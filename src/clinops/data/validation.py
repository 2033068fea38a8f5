"""Validation of raw event records: required fields, types, units, physiological ranges, dedupe and quality score.

Pure pandas over a batch of raw records of one event type. Every rejected row comes back with all of its
reasons (``<code>:<field>``), so the caller can quarantine it; nothing is dropped without a reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from clinops.data.schemas import (
    ADVERSE_EVENT_KINDS,
    ADVERSE_GRADE_RANGE,
    DOSE_UNIT_CONVERSIONS,
    ENVELOPE_FIELDS,
    LAB_TESTS,
    MEDICATION_ROUTES,
    MEDICATIONS,
    VITAL_SIGNS,
    VITALS_BY_NAME,
    EventType,
)

# Quality score multipliers: a repaired unit is probably right, an inferred one only plausibly so.
UNIT_CONVERTED_FACTOR = 0.9
UNIT_INFERRED_FACTOR = 0.8

# Dedupe key: DESIGN's (patient_id, timestamp, source) plus what tells apart two distinct results a source
# legitimately sends at the same second (a lab panel's tests, a medication round's drugs).
DEDUPE_DISCRIMINATOR: dict[EventType, str | None] = {
    EventType.VITALS: None,
    EventType.LAB_RESULT: "test",
    EventType.MEDICATION: "drug_class",
    EventType.ADVERSE_EVENT: "kind",
}

SILVER_COLUMNS: dict[EventType, tuple[str, ...]] = {
    EventType.VITALS: (
        *(m.name for m in VITAL_SIGNS),
        "pulse_pressure",
        "mean_arterial_pressure",
        "shock_index",
    ),
    EventType.LAB_RESULT: ("test", "value", "unit"),
    EventType.MEDICATION: ("drug_class", "drug", "dose", "dose_unit", "route"),
    EventType.ADVERSE_EVENT: ("kind", "grade"),
}
ENVELOPE_COLUMNS = ("event_id", "patient_id", "encounter_id", "timestamp", "source")
QUALITY_COLUMNS = ("quality_score", "unit_converted", "unit_inferred")


@dataclass
class ValidationResult:
    """Valid rows in silver shape, and the reasons for each rejected row (by position in the input)."""

    valid: pd.DataFrame
    rejected: dict[int, list[str]]
    replayed: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)


class _Reasons:
    def __init__(self, n: int) -> None:
        self.n = n
        self.by_row: defaultdict[int, list[str]] = defaultdict(list)

    def add(self, mask: NDArray[Any] | pd.Series, reason: str) -> None:
        for row in np.flatnonzero(np.asarray(mask, dtype=bool)).tolist():
            self.by_row[row].append(reason)

    def mask(self) -> NDArray[Any]:
        rejected = np.zeros(self.n, dtype=bool)
        rejected[list(self.by_row)] = True
        return rejected


def _text(series: pd.Series) -> pd.Series:
    # Arrow-backed strings: vectorised strip/compare, several times faster than object strings.
    return series.astype("string[pyarrow]").str.strip()


def _present(series: pd.Series) -> NDArray[Any]:
    """Not null and, for text (already stripped by ``validate``), not blank."""
    if isinstance(series.dtype, pd.StringDtype):
        return np.asarray((series != "").fillna(False).to_numpy(), dtype=bool)
    return np.asarray(series.notna().to_numpy(), dtype=bool)


def _parse_timestamps(text: pd.Series) -> pd.Series:
    """ISO 8601 to UTC; the canonical ``…T…Z`` form takes Arrow's fast path, other offsets the general parser."""
    arrow = pa.array(text, type=pa.string())
    fast = pc.strptime(arrow, format="%Y-%m-%dT%H:%M:%SZ", unit="ms", error_is_null=True)
    parsed = pd.Series(fast.to_pandas(), index=text.index).dt.tz_localize("UTC")
    retry = (parsed.isna() & text.notna()).to_numpy()
    if retry.any():
        general = pd.to_datetime(text[retry], utc=True, errors="coerce", format="ISO8601").astype(parsed.dtype)
        parsed = parsed.copy()
        parsed.loc[retry] = general
    return parsed


def _numeric(frame: pd.DataFrame, name: str, reasons: _Reasons) -> pd.Series:
    """Numbers (numeric strings accepted); free text is a ``not_numeric`` reason, absence is just NaN."""
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce")
    reasons.add(_present(raw) & values.isna().to_numpy(), f"not_numeric:{name}")
    return values.astype(float)


def _convert_units(
    values: pd.Series, units: pd.Series, canonical: str, conversions: dict[str, tuple[float, float]]
) -> tuple[pd.Series, NDArray[Any], NDArray[Any]]:
    """Canonical values, a mask of rows that were converted, and a mask of unknown units."""
    out = values.copy()
    converted = np.zeros(len(values), dtype=bool)
    known = (units == canonical).fillna(False).to_numpy()
    for unit, (scale, offset) in conversions.items():
        rows = (units == unit).fillna(False).to_numpy()
        # Rounded so a value exactly at a limit in one unit stays within it in the other (no float fuzz).
        out[rows] = (values[rows] * scale + offset).round(6)
        converted |= rows
        known |= rows
    return out, converted, ~known


def _check_range(
    values: pd.Series, low: float | NDArray[Any], high: float | NDArray[Any], name: str, reasons: _Reasons
) -> None:
    outside = values.notna().to_numpy() & ((values < low) | (values > high)).to_numpy()
    reasons.add(outside, f"out_of_range:{name}")


def _vitals(frame: pd.DataFrame, reasons: _Reasons) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for m in VITAL_SIGNS:
        out[m.name] = _numeric(frame, m.name, reasons)
    temperature = VITALS_BY_NAME["temperature"]
    unit = frame["temperature_unit"]
    assert temperature.infer_unit_when is not None
    inferred_unit, low, high = temperature.infer_unit_when
    unlabelled = unit.isna().to_numpy() & out["temperature"].notna().to_numpy()
    looks_alternative = unlabelled & out["temperature"].between(low, high).to_numpy()
    unit = unit.mask(pd.Series(looks_alternative, index=unit.index), inferred_unit)
    unit = unit.mask(pd.Series(unlabelled & ~looks_alternative, index=unit.index), temperature.unit)
    out["temperature"], converted, unknown = _convert_units(
        out["temperature"], unit, temperature.unit, temperature.conversions
    )
    reasons.add(unknown & out["temperature"].notna().to_numpy(), "unknown_unit:temperature")
    for m in VITAL_SIGNS:
        _check_range(out[m.name], m.hard_min, m.hard_max, m.name, reasons)
    present = out[[m.name for m in VITAL_SIGNS]].notna()
    reasons.add(~present.any(axis=1).to_numpy(), "no_measurements")
    reasons.add((out["diastolic_bp"] >= out["systolic_bp"]).to_numpy(), "diastolic_not_below_systolic")
    out["pulse_pressure"] = out["systolic_bp"] - out["diastolic_bp"]
    out["mean_arterial_pressure"] = out["diastolic_bp"] + out["pulse_pressure"] / 3
    out["shock_index"] = out["heart_rate"] / out["systolic_bp"]
    out["unit_converted"] = converted & ~unlabelled
    out["unit_inferred"] = unlabelled
    out["quality_score"] = present.mean(axis=1).to_numpy()
    return out


def _labs(frame: pd.DataFrame, reasons: _Reasons) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    test = frame["test"]
    reasons.add(~_present(frame["test"]), "missing_field:test")
    known_test = test.isin([m.name for m in LAB_TESTS]).fillna(False).to_numpy()
    reasons.add(_present(frame["test"]) & ~known_test, "unknown_test")
    value = _numeric(frame, "value", reasons)
    reasons.add(~_present(frame["value"]), "missing_field:value")
    unit = frame["unit"]
    reasons.add(~_present(frame["unit"]), "missing_field:unit")
    canonical = value.copy()
    converted = np.zeros(len(frame), dtype=bool)
    canonical_unit = pd.Series(pd.NA, index=frame.index, dtype="string")
    for m in LAB_TESTS:
        rows = (test == m.name).fillna(False).to_numpy()
        if not rows.any():
            continue
        values, was_converted, unknown = _convert_units(value[rows], unit[rows], m.unit, m.conversions)
        canonical[rows] = values
        converted[rows] = was_converted
        reasons.add(_scatter(rows, unknown & _present(frame["unit"])[rows]), f"unknown_unit:{m.name}")
        _check_range(canonical.where(pd.Series(rows, index=frame.index)), m.hard_min, m.hard_max, "value", reasons)
        canonical_unit[rows] = m.unit
    out["test"] = test
    out["value"] = canonical
    out["unit"] = canonical_unit
    out["unit_converted"] = converted
    out["unit_inferred"] = False
    out["quality_score"] = 1.0
    return out


def _scatter(rows: NDArray[Any], values: NDArray[Any]) -> NDArray[Any]:
    full = np.zeros(len(rows), dtype=bool)
    full[rows] = values
    return full


def _medications(frame: pd.DataFrame, reasons: _Reasons) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    drug_class = frame["drug_class"]
    reasons.add(~_present(frame["drug_class"]), "missing_field:drug_class")
    known = drug_class.isin(list(MEDICATIONS)).fillna(False).to_numpy()
    reasons.add(_present(frame["drug_class"]) & ~known, "unknown_drug_class")
    dose = _numeric(frame, "dose", reasons)
    reasons.add(~_present(frame["dose"]), "missing_field:dose")
    dose_unit = frame["dose_unit"]
    expected_unit = drug_class.map({name: spec[1] for name, spec in MEDICATIONS.items()})
    max_dose = drug_class.map({name: spec[3] for name, spec in MEDICATIONS.items()}).astype(float)
    converted = np.zeros(len(frame), dtype=bool)
    canonical = dose.copy()
    for (source_unit, target_unit), factor in DOSE_UNIT_CONVERSIONS.items():
        rows = ((dose_unit == source_unit) & (expected_unit == target_unit)).fillna(False).to_numpy()
        canonical[rows] = dose[rows] * factor
        converted |= rows
    unit_ok = ((dose_unit == expected_unit).fillna(False).to_numpy()) | converted
    reasons.add(known & ~unit_ok, "unknown_unit:dose")
    outside = canonical.notna().to_numpy() & known & ((canonical <= 0) | (canonical > max_dose)).to_numpy()
    reasons.add(outside, "out_of_range:dose")
    route = frame["route"]
    reasons.add(_present(frame["route"]) & ~route.isin(MEDICATION_ROUTES).fillna(False).to_numpy(), "unknown_route")
    out["drug_class"] = drug_class
    out["drug"] = frame["drug"]
    out["dose"] = canonical
    out["dose_unit"] = expected_unit.astype("string")
    out["route"] = route
    out["unit_converted"] = converted
    out["unit_inferred"] = False
    # The route is optional in the record but expected; its absence lowers quality.
    out["quality_score"] = np.where(_present(frame["route"]), 1.0, 0.8)
    return out


def _adverse_events(frame: pd.DataFrame, reasons: _Reasons) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    kind = frame["kind"]
    reasons.add(~_present(frame["kind"]), "missing_field:kind")
    reasons.add(_present(frame["kind"]) & ~kind.isin(ADVERSE_EVENT_KINDS).fillna(False).to_numpy(), "unknown_kind")
    grade = _numeric(frame, "grade", reasons)
    reasons.add(~_present(frame["grade"]), "missing_field:grade")
    low, high = ADVERSE_GRADE_RANGE
    valid_grade = grade.isna() | (grade.between(low, high) & (grade == grade.round()))
    reasons.add(~valid_grade.to_numpy(), "out_of_range:grade")
    out["kind"] = kind
    out["grade"] = grade
    out["unit_converted"] = False
    out["unit_inferred"] = False
    out["quality_score"] = 1.0
    return out


_TYPE_RULES = {
    EventType.VITALS: _vitals,
    EventType.LAB_RESULT: _labs,
    EventType.MEDICATION: _medications,
    EventType.ADVERSE_EVENT: _adverse_events,
}
TEXT_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.VITALS: ("temperature_unit",),
    EventType.LAB_RESULT: ("test", "unit"),
    EventType.MEDICATION: ("drug_class", "drug", "dose_unit", "route"),
    EventType.ADVERSE_EVENT: ("kind",),
}
# Raw fields each type reads; absent keys in a record are treated as null.
RAW_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.VITALS: (*(m.name for m in VITAL_SIGNS), "temperature_unit"),
    EventType.LAB_RESULT: ("test", "value", "unit"),
    EventType.MEDICATION: ("drug_class", "drug", "dose", "dose_unit", "route"),
    EventType.ADVERSE_EVENT: ("kind", "grade"),
}


def validate(kind: EventType, raw: pd.DataFrame) -> ValidationResult:
    """Validate and standardise a batch of raw records of one type (rows in arrival order)."""
    frame = raw.reset_index(drop=True)
    for name in (*ENVELOPE_FIELDS, *RAW_FIELDS[kind]):
        if name not in frame.columns:
            frame[name] = None
    # Text fields are converted once to stripped Arrow strings; every rule below reads those.
    for name in (*ENVELOPE_FIELDS, *TEXT_FIELDS[kind]):
        frame[name] = _text(frame[name])
    reasons = _Reasons(len(frame))
    for name in ENVELOPE_FIELDS:
        if name != "event_type":
            reasons.add(~_present(frame[name]), f"missing_field:{name}")
    event_type = frame["event_type"]
    reasons.add(_present(frame["event_type"]) & (event_type != kind.value).fillna(True).to_numpy(), "wrong_event_type")
    timestamp = _parse_timestamps(frame["timestamp"])
    reasons.add(_present(frame["timestamp"]) & timestamp.isna().to_numpy(), "invalid_timestamp")

    typed = _TYPE_RULES[kind](frame, reasons)
    envelope = pd.DataFrame(
        {
            "event_id": frame["event_id"],
            "patient_id": frame["patient_id"],
            "encounter_id": frame["encounter_id"],
            "timestamp": timestamp.astype("datetime64[ms, UTC]"),
            "source": frame["source"],
        }
    )
    silver = pd.concat([envelope, typed[list(SILVER_COLUMNS[kind])], typed[list(QUALITY_COLUMNS)]], axis=1)
    silver["quality_score"] = silver["quality_score"].astype(float) * np.where(
        typed["unit_inferred"].to_numpy(dtype=bool),
        UNIT_INFERRED_FACTOR,
        np.where(typed["unit_converted"].to_numpy(dtype=bool), UNIT_CONVERTED_FACTOR, 1.0),
    )

    # A record seen twice with the same id is a transport replay, the same record: keep one, count the rest.
    valid_mask = ~reasons.mask()
    replay = valid_mask & silver["event_id"].duplicated(keep="first").to_numpy()
    candidates = valid_mask & ~replay
    key = ["patient_id", "timestamp", "source"]
    discriminator = DEDUPE_DISCRIMINATOR[kind]
    if discriminator:
        key.append(discriminator)
    natural = silver[key].where(pd.Series(candidates, index=silver.index), None)
    duplicate = candidates & natural.duplicated(keep="first").to_numpy()
    reasons.add(duplicate, "duplicate")

    keep = candidates & ~duplicate
    valid = silver[keep].reset_index(drop=True)
    counts: dict[str, int] = defaultdict(int)
    for row_reasons in reasons.by_row.values():
        for reason in row_reasons:
            counts[reason] += 1
    return ValidationResult(
        valid=valid, rejected=dict(reasons.by_row), replayed=int(replay.sum()), reason_counts=dict(counts)
    )
