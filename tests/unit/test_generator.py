from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from clinops.data.generator import EVENT_MIX, DriftKnobs, GeneratorConfig, generate
from clinops.data.risk import BASELINE_INTERCEPT, intercept_for_rate, readmission_risk
from clinops.data.schemas import AGE_CAP, EventType


@pytest.fixture(scope="module")
def cohort():
    return generate(GeneratorConfig(patients=2500, seed=3))


def test_same_config_same_cohort() -> None:
    config = GeneratorConfig(patients=150, seed=5)
    first, second = generate(config), generate(config)
    pd.testing.assert_frame_equal(first.encounters, second.encounters)
    for kind in EventType:
        pd.testing.assert_frame_equal(first.events[kind], second.events[kind])


def test_other_seed_other_cohort() -> None:
    first = generate(GeneratorConfig(patients=150, seed=5))
    second = generate(GeneratorConfig(patients=150, seed=6))
    assert set(first.patients["patient_id"]).isdisjoint(second.patients["patient_id"])


def test_event_mix_matches_within_one_point(cohort) -> None:
    total = cohort.event_count
    for kind, share in EVENT_MIX.items():
        assert abs(len(cohort.events[kind]) / total - share) < 0.01, kind


def test_phi_free_by_construction(cohort) -> None:
    assert cohort.patients["patient_id"].map(lambda v: bool(re.fullmatch(r"p-[0-9a-f]{16}", v))).all()
    assert cohort.encounters["encounter_id"].str.fullmatch(r"e-[0-9a-f]{16}").all()
    assert cohort.patients["age"].max() == AGE_CAP
    assert (cohort.patients.loc[cohort.patients["age"] == AGE_CAP, "age_band"] == "90+").all()
    forbidden = {"name", "address", "date_of_birth", "dob", "mrn", "ssn", "zip"}
    columns = set(cohort.patients.columns) | set(cohort.encounters.columns)
    for frame in cohort.events.values():
        columns |= set(frame.columns)
    assert not columns & forbidden


def test_events_lie_within_their_stay(cohort) -> None:
    stays = cohort.encounters.set_index("encounter_id")
    for frame in cohort.events.values():
        admit = stays.loc[frame["encounter_id"], "admit_time"].to_numpy()
        discharge = stays.loc[frame["encounter_id"], "discharge_time"].to_numpy()
        assert (frame["timestamp"].to_numpy() >= admit).all()
        assert (frame["timestamp"].to_numpy() <= discharge).all()


def test_stays_of_one_patient_do_not_overlap(cohort) -> None:
    enc = cohort.encounters.sort_values(["patient_id", "admit_time"])
    previous_discharge = enc.groupby("patient_id")["discharge_time"].shift(1)
    overlapping = enc["admit_time"] < previous_discharge
    assert not overlapping.any()


def test_vitals_are_physiologically_plausible_and_correlated(cohort) -> None:
    vitals = cohort.events[EventType.VITALS]
    assert vitals["heart_rate"].between(30, 200).mean() > 0.999
    assert vitals["spo2"].between(70, 100).all()
    assert (vitals["diastolic_bp"] < vitals["systolic_bp"]).all()
    # Sicker stays run faster hearts and lower saturation.
    merged = vitals.merge(cohort.encounters[["encounter_id", "severity"]], on="encounter_id")
    assert merged["heart_rate"].corr(merged["severity"]) > 0.3
    assert merged["spo2"].corr(merged["severity"]) < -0.2


def test_outcome_has_learnable_signal(cohort) -> None:
    enc = cohort.encounters
    assert 0.08 < enc["readmitted_30d"].mean() < 0.3
    assert roc_auc_score(enc["readmitted_30d"], enc["oracle_risk"]) > 0.78
    assert 0.03 < enc["adverse_event_24h"].mean() < 0.4


def test_covariate_shift_makes_population_older_and_sicker(cohort) -> None:
    shifted = generate(GeneratorConfig(patients=2500, seed=3, drift=DriftKnobs(covariate_shift=1.0)))
    assert shifted.patients["age"].mean() > cohort.patients["age"].mean() + 5
    assert shifted.patients["comorbidity_count"].mean() > cohort.patients["comorbidity_count"].mean()
    assert shifted.encounters["severity"].mean() > cohort.encounters["severity"].mean()


def test_prior_shift_hits_the_requested_rate() -> None:
    shifted = generate(GeneratorConfig(patients=2500, seed=3, drift=DriftKnobs(readmission_rate=0.3)))
    assert shifted.encounters["oracle_risk"].mean() == pytest.approx(0.3, abs=1e-6)
    assert abs(shifted.encounters["readmitted_30d"].mean() - 0.3) < 0.03


def test_concept_shift_changes_the_risk_function_not_the_population(cohort) -> None:
    shifted = generate(GeneratorConfig(patients=2500, seed=3, drift=DriftKnobs(concept_shift=1.0)))
    pd.testing.assert_frame_equal(shifted.patients, cohort.patients)
    baseline_risk = readmission_risk(shifted.encounters)
    assert not np.allclose(baseline_risk, shifted.encounters["oracle_risk"])
    assert np.corrcoef(baseline_risk, shifted.encounters["oracle_risk"])[0, 1] < 0.95


def test_intercept_for_rate_inverts_the_mean_risk(cohort) -> None:
    intercept = intercept_for_rate(cohort.encounters, 0.12)
    assert readmission_risk(cohort.encounters, intercept=intercept).mean() == pytest.approx(0.12, abs=1e-7)
    assert intercept != BASELINE_INTERCEPT


@pytest.mark.parametrize(
    "drift", [{"covariate_shift": -1}, {"readmission_rate": 1.5}, {"concept_shift": 2}, {"unknown": 1}]
)
def test_drift_knobs_reject_nonsense(drift) -> None:
    with pytest.raises(ValidationError):
        DriftKnobs(**drift)
