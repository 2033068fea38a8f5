from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clinops.data.schemas import COMORBIDITIES
from clinops.features.definitions import ENCOUNTER_FEATURES, FEATURES_BY_NAME, Role, model_inputs
from clinops.features.offline import SilverInputs, encounter_features

ADMIT = pd.Timestamp("2026-01-01T00:00:00Z")


def at(hours: float) -> pd.Timestamp:
    return ADMIT + pd.Timedelta(hours=hours)


def _events(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["event_id"] = [f"ev-{i}" for i in range(len(frame))]
    frame["patient_id"] = "p-1"
    return frame


@pytest.fixture
def inputs() -> SilverInputs:
    patients = pd.DataFrame(
        {
            "patient_id": ["p-1"],
            "sex": ["F"],
            "age": [80],
            "age_band": ["75-89"],
            **{c: [c == "heart_failure"] for c in COMORBIDITIES},
            "comorbidity_count": [1],
        }
    )
    encounters = pd.DataFrame(
        {
            "encounter_id": ["e-1"],
            "patient_id": ["p-1"],
            "admit_time": [ADMIT],
            "discharge_time": [at(48)],
            "los_hours": [48.0],
        }
    )
    # Heart rate 100 → 80 over the stay: -0.5 bpm per hour; one reading after discharge must be ignored.
    hours = [0, 10, 20, 30, 40]
    vitals = _events(
        [
            {
                "encounter_id": "e-1",
                "timestamp": at(h),
                "heart_rate": 100 - 0.5 * h,
                "systolic_bp": 120.0,
                "diastolic_bp": 80.0,
                "spo2": np.nan if h == 40 else 95.0,
                "temperature": 37.0,
                "respiratory_rate": 16.0,
                "mean_arterial_pressure": 80 + 40 / 3,
                "shock_index": (100 - 0.5 * h) / 120,
            }
            for h in hours
        ]
        + [
            {
                "encounter_id": "e-1",
                "timestamp": at(60),
                "heart_rate": 200.0,
                "systolic_bp": 120.0,
                "diastolic_bp": 80.0,
                "spo2": 80.0,
                "temperature": 39.0,
                "respiratory_rate": 30.0,
                "mean_arterial_pressure": 93.0,
                "shock_index": 1.6,
            }
        ]
    )
    labs = _events(
        [
            {"encounter_id": "e-1", "timestamp": at(1), "test": "creatinine", "value": 1.0},
            {"encounter_id": "e-1", "timestamp": at(30), "test": "creatinine", "value": 1.6},
            {"encounter_id": "e-1", "timestamp": at(2), "test": "lactate", "value": 2.5},
        ]
    )
    meds = _events(
        [
            {"encounter_id": "e-1", "timestamp": at(h), "drug_class": c}
            for h, c in [(1, "diuretic"), (2, "diuretic"), (3, "opioid")]
        ]
    )
    adverse = _events([{"encounter_id": "e-1", "timestamp": at(5), "kind": "fall"}])
    outcomes = pd.DataFrame({"encounter_id": ["e-1"], "readmitted_30d": [True], "adverse_event_24h": [True]})
    return SilverInputs(patients, encounters, outcomes, vitals, labs, meds, adverse)


def test_vital_aggregates_match_hand_computation(inputs) -> None:
    row = encounter_features(inputs).iloc[0]
    hr = np.array([100, 95, 90, 85, 80], dtype=float)
    assert row["heart_rate_last_stay"] == 80
    assert row["heart_rate_mean_stay"] == pytest.approx(hr.mean())
    assert row["heart_rate_min_stay"] == 80
    assert row["heart_rate_max_stay"] == 100  # the post-discharge 200 is not part of the stay
    assert row["heart_rate_std_stay"] == pytest.approx(hr.std(ddof=1))
    assert row["heart_rate_slope_stay"] == pytest.approx(-0.5)
    assert row["vitals_count"] == 5


def test_last_24h_window_only_sees_the_last_day(inputs) -> None:
    row = encounter_features(inputs).iloc[0]
    # Readings at 30 h and 40 h fall in the 24 h before discharge at 48 h.
    assert row["heart_rate_mean_last_24h"] == pytest.approx((85 + 80) / 2)
    assert row["heart_rate_slope_last_24h"] == pytest.approx(-0.5)
    # spo2 has a single reading in that window: no trend.
    assert math.isnan(row["spo2_slope_last_24h"])


def test_a_missing_reading_is_skipped_not_zeroed(inputs) -> None:
    row = encounter_features(inputs).iloc[0]
    assert row["spo2_last_stay"] == 95
    assert row["spo2_mean_stay"] == 95


def test_labs_meds_adverse_events_and_demographics(inputs) -> None:
    row = encounter_features(inputs).iloc[0]
    assert row["creatinine_last"] == 1.6
    assert row["lactate_last"] == 2.5
    assert math.isnan(row["glucose_last"])  # never measured stays missing
    assert row["med_diuretic_count"] == 2
    assert row["med_opioid_count"] == 1
    assert row["medication_count"] == 3
    assert row["drug_class_count"] == 2
    assert row["adverse_event_count"] == 1
    assert row["is_female"] == 1
    assert row["heart_failure"] == 1
    assert row["ckd"] == 0
    assert row["readmitted_30d"]


def test_every_defined_feature_is_produced_in_order(inputs) -> None:
    frame = encounter_features(inputs)
    assert list(frame.columns) == [f.name for f in ENCOUNTER_FEATURES]


def test_model_inputs_exclude_ids_targets_and_leaks() -> None:
    readmission = model_inputs("readmitted_30d")
    assert "adverse_event_count" in readmission
    assert "adverse_event_count" not in model_inputs("adverse_event_24h")
    for name in ("encounter_id", "patient_id", "readmitted_30d", "adverse_event_24h", "sex", "age_band"):
        assert name not in readmission
    assert all(FEATURES_BY_NAME[name].role is Role.FEATURE for name in readmission)
    assert all(f.description for f in ENCOUNTER_FEATURES)
