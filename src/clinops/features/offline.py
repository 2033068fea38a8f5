"""Batch feature engineering: silver tables → the gold per-encounter training table."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from clinops.data.schemas import COMORBIDITIES, DRUG_CLASSES, ENTITY_BY_EVENT_TYPE, LAB_TESTS, EventType
from clinops.errors import ClinopsError
from clinops.features.definitions import (
    ENCOUNTER_FEATURES,
    VITAL_SERIES,
    WINDOW_AGGREGATIONS,
    WINDOW_HOURS_BEFORE_DISCHARGE,
    vital_feature_name,
)
from clinops.lake.layout import GOLD, SILVER, silver_prefix, table_key, table_prefix
from clinops.lake.silver import silver_schema
from clinops.lake.store import Lake, LakeError

GOLD_ENCOUNTERS = "encounters"


@dataclass(frozen=True)
class SilverInputs:
    patients: pd.DataFrame
    encounters: pd.DataFrame
    outcomes: pd.DataFrame | None
    vitals: pd.DataFrame
    labs: pd.DataFrame
    medications: pd.DataFrame
    adverse_events: pd.DataFrame


def _hours_since_admit(events: pd.DataFrame, encounters: pd.DataFrame) -> pd.DataFrame:
    """Events of each stay with their time since admission; events outside their stay are not the stay's."""
    stays = encounters[["encounter_id", "admit_time", "discharge_time", "los_hours"]]
    joined = events.merge(stays, on="encounter_id", how="inner")
    inside = (joined["timestamp"] >= joined["admit_time"]) & (joined["timestamp"] <= joined["discharge_time"])
    joined = joined[inside].copy()
    joined["hours"] = (joined["timestamp"] - joined["admit_time"]).dt.total_seconds() / 3600
    return joined.sort_values(["encounter_id", "timestamp", "event_id"], kind="stable")


def _slope(frame: pd.DataFrame, column: str) -> pd.Series:
    """Least-squares slope of ``column`` against ``hours`` per encounter, from grouped sums (no Python loop)."""
    present = frame[column].notna()
    x = frame["hours"].where(present)
    y = frame[column]
    sums = (
        pd.DataFrame(
            {
                "n": present.astype(float),
                "x": x,
                "y": y,
                "xx": x * x,
                "xy": x * y,
                "encounter_id": frame["encounter_id"],
            }
        )
        .groupby("encounter_id")
        .sum(min_count=1)
    )
    n = sums["n"]
    denominator = n * sums["xx"] - sums["x"] ** 2
    slope = (n * sums["xy"] - sums["x"] * sums["y"]) / denominator
    # Fewer than two readings, or all at one instant, have no trend.
    return slope.where((n >= 2) & (denominator.abs() > 1e-12))


def _vital_features(vitals: pd.DataFrame) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {}
    for window, aggregations in WINDOW_AGGREGATIONS.items():
        hours_before = WINDOW_HOURS_BEFORE_DISCHARGE[window]
        part = vitals if hours_before is None else vitals[vitals["hours"] >= vitals["los_hours"] - hours_before]
        grouped = part.groupby("encounter_id")
        for series in VITAL_SERIES:
            for aggregation in aggregations:
                name = vital_feature_name(series, aggregation, window)
                if aggregation == "slope":
                    columns[name] = _slope(part, series)
                else:
                    columns[name] = grouped[series].agg(aggregation)
    features = pd.DataFrame(columns)
    features["vitals_count"] = vitals.groupby("encounter_id").size()
    return features


def _lab_features(labs: pd.DataFrame) -> pd.DataFrame:
    latest = labs.groupby(["encounter_id", "test"])["value"].last().unstack("test")
    latest = latest.reindex(columns=[m.name for m in LAB_TESTS])
    return latest.rename(columns=lambda test: f"{test}_last")


def _medication_features(meds: pd.DataFrame) -> pd.DataFrame:
    counts = meds.groupby(["encounter_id", "drug_class"]).size().unstack("drug_class", fill_value=0)
    counts = counts.reindex(columns=list(DRUG_CLASSES), fill_value=0)
    features = counts.rename(columns=lambda c: f"med_{c}_count")
    features["medication_count"] = counts.sum(axis=1)
    features["drug_class_count"] = (counts > 0).sum(axis=1)
    return features


def encounter_features(inputs: SilverInputs) -> pd.DataFrame:
    """One row per encounter with every feature of ``ENCOUNTER_FEATURES`` (and the targets when known)."""
    encounters = inputs.encounters
    frame = encounters[["encounter_id", "patient_id", "discharge_time", "los_hours"]].merge(
        inputs.patients, on="patient_id", how="left", validate="many_to_one"
    )
    frame["is_female"] = (frame["sex"] == "F").astype("int64")
    for name in COMORBIDITIES:
        frame[name] = frame[name].astype("int64")
    frame = frame.set_index("encounter_id")
    parts: list[pd.DataFrame | pd.Series] = [
        _vital_features(_hours_since_admit(inputs.vitals, encounters)),
        _lab_features(_hours_since_admit(inputs.labs, encounters)),
        _medication_features(_hours_since_admit(inputs.medications, encounters)),
        _hours_since_admit(inputs.adverse_events, encounters)
        .groupby("encounter_id")
        .size()
        .rename("adverse_event_count"),
    ]
    frame = frame.join(parts, how="left")
    count_columns = [f.name for f in ENCOUNTER_FEATURES if f.dtype == "int64" and f.name in frame.columns]
    frame[count_columns] = frame[count_columns].fillna(0).astype("int64")
    frame = frame.reset_index()
    if inputs.outcomes is not None:
        frame = frame.merge(inputs.outcomes, on="encounter_id", how="left", validate="one_to_one")
    ordered = [f.name for f in ENCOUNTER_FEATURES if f.name in frame.columns]
    return frame[ordered].sort_values(["discharge_time", "encounter_id"], kind="stable").reset_index(drop=True)


def read_silver(lake: Lake) -> SilverInputs:
    def table(name: str) -> pd.DataFrame:
        frame: pd.DataFrame = lake.read_parquet(table_prefix(SILVER, name)).to_pandas()
        return frame

    def events(kind: EventType) -> pd.DataFrame:
        # Read as declared: Parquet from the Flink job cannot mark its timestamps as UTC.
        table = lake.read_parquet(silver_prefix(ENTITY_BY_EVENT_TYPE[kind]), schema=silver_schema(kind))
        frame: pd.DataFrame = table.to_pandas()
        return frame

    try:
        outcomes: pd.DataFrame | None = table("outcomes")
    except LakeError:
        outcomes = None  # outcomes arrive weeks later; features do not wait for them
    try:
        return SilverInputs(
            patients=table("patients"),
            encounters=table("encounters"),
            outcomes=outcomes,
            vitals=events(EventType.VITALS),
            labs=events(EventType.LAB_RESULT),
            medications=events(EventType.MEDICATION),
            adverse_events=events(EventType.ADVERSE_EVENT),
        )
    except LakeError as exc:
        raise ClinopsError(f"silver is incomplete, run `clinops lake bronze-to-silver` first: {exc}") from exc


def build_gold(lake: Lake) -> pd.DataFrame:
    """Compute the gold encounter table from silver and write it atomically; returns it."""
    gold = encounter_features(read_silver(lake))
    lake.write_parquet(table_key(GOLD, GOLD_ENCOUNTERS), pa.Table.from_pandas(gold, preserve_index=False))
    return gold
