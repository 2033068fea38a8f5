"""Seeded synthetic clinical cohort: patients, encounters, event streams and outcomes with a known risk function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import expit

from clinops.data.risk import BASELINE_INTERCEPT, intercept_for_rate, readmission_risk
from clinops.data.schemas import (
    ADVERSE_EVENT_KINDS,
    AGE_CAP,
    COMORBIDITIES,
    DRUG_CLASSES,
    LAB_TESTS,
    MEDICATIONS,
    EventType,
    age_band,
)

# Overall event mix; the adverse-event share is redistributed across encounters by severity below.
EVENT_MIX: dict[EventType, float] = {
    EventType.VITALS: 0.70,
    EventType.MEDICATION: 0.20,
    EventType.LAB_RESULT: 0.09,
    EventType.ADVERSE_EVENT: 0.01,
}
# The first lab events of a stay are the admission panel; later ones repeat tests by these weights.
LAB_PANEL = ("creatinine", "glucose", "lactate", "wbc", "hemoglobin", "sodium", "potassium")
LAB_REPEAT_WEIGHTS = np.array([0.25, 0.25, 0.15, 0.15, 0.1, 0.05, 0.05])


class DriftKnobs(BaseModel):
    """Distribution shifts of the generated population, each reproducible by seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    covariate_shift: float = Field(
        0.0, ge=0.0, le=3.0, description="Older, sicker population: 1.0 adds ~8 years and more comorbidity."
    )
    readmission_rate: float | None = Field(
        None, gt=0.0, lt=1.0, description="Prior shift: target cohort readmission rate (None: the baseline)."
    )
    concept_shift: float = Field(
        0.0, ge=0.0, le=1.0, description="Concept shift: 0 baseline risk function, 1 the shifted one."
    )


class DirtRates(BaseModel):
    """Per-record probabilities of the realistic faults that validation must catch or repair."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duplicate: float = Field(0.01, ge=0, le=0.5, description="Record re-sent by its source with a new id.")
    out_of_range: float = Field(0.004, ge=0, le=0.5, description="A measurement outside physiological limits.")
    alternative_unit: float = Field(
        0.03,
        ge=0,
        le=0.5,
        description="A value in a non-canonical unit (°F, mmol/L glucose, µmol/L, g doses).",
    )
    unlabelled_unit: float = Field(0.003, ge=0, le=0.5, description="A temperature in °F whose unit field is missing.")
    missing_field: float = Field(0.003, ge=0, le=0.5, description="A required envelope field missing.")
    not_numeric: float = Field(0.002, ge=0, le=0.5, description="Free text where a number belongs.")
    missing_measurement: float = Field(
        0.04, ge=0, le=0.5, description="One optional vital sign not recorded in a vitals panel."
    )
    bad_timestamp: float = Field(0.001, ge=0, le=0.5, description="An unparseable timestamp.")


class GeneratorConfig(BaseModel):
    """Everything that determines a generated cohort: same config, same bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: int = Field(2000, ge=1, le=2_000_000, description="Number of patients in the cohort.")
    seed: int = Field(7, ge=0, description="Seed of every random draw.")
    start: date = Field(date(2026, 1, 1), description="First day of the simulated admission window.")
    days: int = Field(90, ge=1, le=3650, description="Length of the admission window in days.")
    drift: DriftKnobs = Field(default_factory=DriftKnobs, description="Distribution shifts.")
    dirt: DirtRates = Field(default_factory=DirtRates, description="Rates of injected data faults.")


@dataclass(frozen=True)
class Cohort:
    """A generated cohort: clean reference tables, clean events per type, and the outcome ground truth."""

    config: GeneratorConfig
    patients: pd.DataFrame
    encounters: pd.DataFrame
    events: dict[EventType, pd.DataFrame]
    readmission_intercept: float

    @property
    def event_count(self) -> int:
        return sum(len(frame) for frame in self.events.values())


def opaque_ids(rng: np.random.Generator, prefix: str, n: int) -> NDArray[Any]:
    # 63 random bits: collisions are negligible at any cohort size we generate, and ids carry no meaning.
    values = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    while len(np.unique(values)) < n:
        values = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    return np.array([f"{prefix}-{v:016x}" for v in values.tolist()], dtype=object)


def _patients(rng: np.random.Generator, config: GeneratorConfig) -> pd.DataFrame:
    n = config.patients
    shift = config.drift.covariate_shift
    raw_age = np.clip(np.round(rng.normal(62 + 8 * shift, 17, n)), 18, 105).astype(int)
    age = np.minimum(raw_age, AGE_CAP)
    frame = pd.DataFrame(
        {
            "patient_id": opaque_ids(rng, "p", n),
            "sex": rng.choice(["F", "M"], size=n),
            "age": age,
            "age_band": [age_band(a) for a in age.tolist()],
        }
    )
    decades = (raw_age - 60) / 10
    # Prevalence rises with age (logistic in decades); covariate shift adds comorbidity on top of age.
    prevalence = {
        "diabetes": (-1.2, 0.25),
        "heart_failure": (-2.3, 0.45),
        "ckd": (-2.2, 0.40),
        "copd": (-2.2, 0.30),
        "hypertension": (-0.4, 0.40),
    }
    for name in COMORBIDITIES:
        intercept, per_decade = prevalence[name]
        frame[name] = rng.random(n) < expit(intercept + per_decade * decades + 0.4 * shift)
    frame["comorbidity_count"] = frame[list(COMORBIDITIES)].sum(axis=1).astype(int)
    return frame


def _encounters(rng: np.random.Generator, config: GeneratorConfig, patients: pd.DataFrame) -> pd.DataFrame:
    counts = 1 + rng.poisson(0.5, len(patients))
    enc = patients.loc[np.repeat(patients.index.to_numpy(), counts)].reset_index(drop=True)
    n = len(enc)
    shift = config.drift.covariate_shift
    enc["severity"] = rng.normal(0, 0.9, n) + 0.15 * enc["comorbidity_count"] + 0.01 * (enc["age"] - 62) + 0.4 * shift
    # trajectory > 0: deteriorating towards discharge; < 0: improving. It tilts every vital over the stay.
    enc["trajectory"] = rng.normal(0, 1, n)
    los_days = np.exp(rng.normal(np.log(3.0), 0.5, n) + 0.25 * enc["severity"])
    enc["los_hours"] = np.clip(np.round(los_days * 24, 1), 6.0, 21 * 24.0)

    # Stays of one patient follow each other: first admission early in the window, then gaps of weeks.
    window_hours = config.days * 24.0
    gaps = np.where(
        enc.groupby("patient_id", sort=False).cumcount().to_numpy() == 0,
        rng.uniform(0, 0.6 * window_hours, n),
        24 + rng.exponential(20 * 24, n),
    )
    previous_los = enc.groupby("patient_id", sort=False)["los_hours"].shift(1, fill_value=0.0).to_numpy()
    offset_hours = pd.Series(gaps + previous_los).groupby(enc["patient_id"].to_numpy(), sort=False).cumsum()
    enc["admit_offset_h"] = np.round(offset_hours.to_numpy(), 4)
    enc = enc[enc["admit_offset_h"] < window_hours].reset_index(drop=True)
    n = len(enc)
    origin = pd.Timestamp(datetime.combine(config.start, datetime.min.time(), tzinfo=UTC))
    enc["admit_time"] = (origin + pd.to_timedelta(enc["admit_offset_h"], unit="h")).dt.floor("s")
    enc["discharge_time"] = (enc["admit_time"] + pd.to_timedelta(enc["los_hours"], unit="h")).dt.floor("s")
    enc.insert(0, "encounter_id", opaque_ids(rng, "e", n))
    enc["monitor"] = [f"monitor-{b:03d}" for b in rng.integers(1, 400, n).tolist()]

    severity = enc["severity"].to_numpy()
    sick = np.clip(severity, 0, None)
    copd = enc["copd"].to_numpy(dtype=float)
    hf = enc["heart_failure"].to_numpy(dtype=float)
    ckd = enc["ckd"].to_numpy(dtype=float)
    htn = enc["hypertension"].to_numpy(dtype=float)
    diabetes = enc["diabetes"].to_numpy(dtype=float)
    female = (enc["sex"] == "F").to_numpy(dtype=float)
    # True physiological state of the stay; readings scatter around it with measurement noise.
    enc["true_heart_rate"] = 78 + 7 * severity + 4 * copd + rng.normal(0, 6, n)
    enc["true_respiratory_rate"] = 16 + 1.6 * severity + 2 * copd + rng.normal(0, 1.5, n)
    enc["true_spo2"] = np.minimum(97 - 1.2 * severity - 2.5 * copd + rng.normal(0, 1, n), 99.5)
    enc["true_systolic_bp"] = 124 + 10 * htn - 4 * severity + rng.normal(0, 10, n)
    enc["true_diastolic_bp"] = 0.5 * enc["true_systolic_bp"] + 14 + rng.normal(0, 5, n)
    enc["true_temperature"] = 36.9 + 0.35 * sick + rng.normal(0, 0.25, n)
    enc["true_creatinine"] = np.exp(rng.normal(np.log(0.9), 0.2, n)) * (1 + ckd) * (1 + 0.12 * sick)
    enc["true_glucose"] = 105 + 60 * diabetes + 12 * severity + rng.normal(0, 15, n)
    enc["true_lactate"] = np.exp(rng.normal(np.log(1.1), 0.3, n) + 0.35 * sick)
    enc["true_wbc"] = np.exp(rng.normal(np.log(7.5), 0.25, n) + 0.15 * severity)
    enc["true_hemoglobin"] = 14.0 - 1.0 * female - 0.6 * ckd - 0.3 * severity + rng.normal(0, 1.2, n)
    enc["true_sodium"] = 139 - 1.0 * hf + rng.normal(0, 2.5, n)
    enc["true_potassium"] = 4.2 + 0.35 * ckd + rng.normal(0, 0.35, n)
    return enc.drop(columns=["admit_offset_h"])


def _event_skeleton(rng: np.random.Generator, enc: pd.DataFrame) -> pd.DataFrame:
    """Event rows (encounter, time, type) with the mix of EVENT_MIX; sicker stays get more adverse events."""
    n_events = 4 + rng.poisson(enc["los_hours"].to_numpy() * 0.9)
    weight = np.exp(0.8 * enc["severity"].to_numpy())
    p_adverse = np.clip(
        EVENT_MIX[EventType.ADVERSE_EVENT] * weight * n_events.sum() / (weight * n_events).sum(), 0, 0.2
    )
    rest = 1 - EVENT_MIX[EventType.ADVERSE_EVENT]
    p_vitals = (1 - p_adverse) * EVENT_MIX[EventType.VITALS] / rest
    p_medication = (1 - p_adverse) * EVENT_MIX[EventType.MEDICATION] / rest
    p_lab = (1 - p_adverse) * EVENT_MIX[EventType.LAB_RESULT] / rest

    rows = np.repeat(np.arange(len(enc)), n_events)
    u = rng.random(len(rows))
    cut_vitals = p_vitals[rows]
    cut_medication = cut_vitals + p_medication[rows]
    cut_lab = cut_medication + p_lab[rows]
    kind = np.select(
        [u < cut_vitals, u < cut_medication, u < cut_lab],
        [0, 1, 2],
        default=3,
    )
    fraction = rng.random(len(rows))
    skeleton = pd.DataFrame({"enc_row": rows, "kind": kind, "fraction": fraction})
    skeleton = skeleton.sort_values(["enc_row", "fraction"], kind="stable").reset_index(drop=True)
    rows = skeleton["enc_row"].to_numpy()
    admit_s = _epoch_seconds(enc["admit_time"])[rows]
    offset_s = np.floor(skeleton["fraction"].to_numpy() * enc["los_hours"].to_numpy()[rows] * 3600).astype(np.int64)
    skeleton["timestamp"] = pd.to_datetime(admit_s + offset_s, unit="s", utc=True)
    return skeleton


def _epoch_seconds(times: pd.Series) -> NDArray[Any]:
    return np.asarray(times.astype("datetime64[s, UTC]").astype(np.int64))


def _envelope(
    rng: np.random.Generator, enc: pd.DataFrame, part: pd.DataFrame, kind: EventType, source: NDArray[Any] | str
) -> pd.DataFrame:
    rows = part["enc_row"].to_numpy()
    return pd.DataFrame(
        {
            "event_id": opaque_ids(rng, "ev", len(part)),
            "event_type": kind.value,
            "patient_id": enc["patient_id"].to_numpy()[rows],
            "encounter_id": enc["encounter_id"].to_numpy()[rows],
            "timestamp": part["timestamp"].to_numpy(),
            "source": source,
        }
    )


def _vitals(rng: np.random.Generator, enc: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    rows = part["enc_row"].to_numpy()
    n = len(part)
    # -1 at admission, +1 at discharge: a deteriorating stay ends worse than it began.
    tilt = enc["trajectory"].to_numpy()[rows] * (2 * part["fraction"].to_numpy() - 1)

    def reading(name: str, trend: float, noise: float) -> NDArray[Any]:
        return np.asarray(enc[f"true_{name}"].to_numpy()[rows] + trend * tilt + rng.normal(0, noise, n))

    frame = _envelope(rng, enc, part, EventType.VITALS, enc["monitor"].to_numpy()[rows])
    frame["heart_rate"] = np.round(reading("heart_rate", 6.0, 3.0))
    systolic = np.round(reading("systolic_bp", -4.0, 6.0))
    frame["systolic_bp"] = systolic
    frame["diastolic_bp"] = np.minimum(np.round(reading("diastolic_bp", -2.0, 4.0)), systolic - 10)
    frame["spo2"] = np.minimum(np.round(reading("spo2", -1.2, 0.7)), 100.0)
    frame["temperature"] = np.round(reading("temperature", 0.3, 0.15), 1)
    frame["temperature_unit"] = "C"
    frame["respiratory_rate"] = np.round(reading("respiratory_rate", 1.5, 1.0))
    return frame


def _labs(rng: np.random.Generator, enc: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    rows = part["enc_row"].to_numpy()
    order = part.groupby("enc_row", sort=False).cumcount().to_numpy()
    repeat = rng.choice(len(LAB_PANEL), size=len(part), p=LAB_REPEAT_WEIGHTS)
    test_index = np.where(order < len(LAB_PANEL), np.minimum(order, len(LAB_PANEL) - 1), repeat)
    tests = np.array(LAB_PANEL, dtype=object)[test_index]
    truth = np.column_stack([enc[f"true_{name}"].to_numpy() for name in LAB_PANEL])[rows, test_index]
    # Analytical noise: ~4 % coefficient of variation, typical of clinical chemistry.
    values = truth * np.exp(rng.normal(0, 0.04, len(part)))
    units = {m.name: m.unit for m in LAB_TESTS}
    frame = _envelope(rng, enc, part, EventType.LAB_RESULT, "lis")
    frame["test"] = tests
    frame["value"] = np.round(values, 2)
    frame["unit"] = [units[t] for t in tests.tolist()]
    return frame


def _medications(rng: np.random.Generator, enc: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    rows = part["enc_row"].to_numpy()
    e = enc.iloc[rows]
    sick = np.clip(e["severity"].to_numpy(), 0, None)
    weights = np.column_stack(
        [
            1.0 + sick,  # antibiotic
            1.2 + 0 * sick,  # anticoagulant (VTE prophylaxis for everyone)
            0.3 + 3 * e["diabetes"].to_numpy(),  # insulin
            0.5 + 3 * e["heart_failure"].to_numpy(),  # diuretic
            0.6 + 1.5 * e["heart_failure"].to_numpy() + e["hypertension"].to_numpy(),  # beta blocker
            0.7 + 0 * sick,  # opioid
            0.5 + 2 * e["hypertension"].to_numpy(),  # ACE inhibitor
            0.3 + 2 * e["copd"].to_numpy(),  # corticosteroid
        ]
    )
    cumulative = np.cumsum(weights, axis=1)
    pick = (rng.random(len(part)) * cumulative[:, -1])[:, None] < cumulative
    class_index = pick.argmax(axis=1)
    classes = np.array(DRUG_CLASSES, dtype=object)[class_index]
    typical = np.array([MEDICATIONS[c][2] for c in DRUG_CLASSES])[class_index]
    frame = _envelope(rng, enc, part, EventType.MEDICATION, "emar")
    frame["drug_class"] = classes
    frame["drug"] = [MEDICATIONS[c][0] for c in classes.tolist()]
    frame["dose"] = np.round(typical * np.exp(rng.normal(0, 0.25, len(part))), 1)
    frame["dose_unit"] = [MEDICATIONS[c][1] for c in classes.tolist()]
    frame["route"] = [MEDICATIONS[c][4] for c in classes.tolist()]
    return frame


def _adverse_events(rng: np.random.Generator, enc: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    rows = part["enc_row"].to_numpy()
    e = enc.iloc[rows]
    weights = np.ones((len(part), len(ADVERSE_EVENT_KINDS)))
    weights[:, ADVERSE_EVENT_KINDS.index("hypoglycemia")] += 3 * e["diabetes"].to_numpy()
    weights[:, ADVERSE_EVENT_KINDS.index("acute_kidney_injury")] += 3 * e["ckd"].to_numpy()
    weights[:, ADVERSE_EVENT_KINDS.index("fall")] += (e["age"].to_numpy() >= 75) * 2.0
    cumulative = np.cumsum(weights, axis=1)
    pick = (rng.random(len(part)) * cumulative[:, -1])[:, None] < cumulative
    frame = _envelope(rng, enc, part, EventType.ADVERSE_EVENT, "incident-report")
    frame["kind"] = np.array(ADVERSE_EVENT_KINDS, dtype=object)[pick.argmax(axis=1)]
    p_grade = np.clip(0.25 + 0.08 * e["severity"].to_numpy(), 0.05, 0.9)
    frame["grade"] = 1 + rng.binomial(4, p_grade)
    return frame


def _outcomes(
    rng: np.random.Generator,
    config: GeneratorConfig,
    enc: pd.DataFrame,
    events: dict[EventType, pd.DataFrame],
) -> float:
    adverse = events[EventType.ADVERSE_EVENT]
    enc["adverse_event_count"] = (
        adverse.groupby("encounter_id").size().reindex(enc["encounter_id"], fill_value=0).to_numpy()
    )
    meds = events[EventType.MEDICATION]
    enc["drug_class_count"] = (
        meds.groupby("encounter_id")["drug_class"].nunique().reindex(enc["encounter_id"], fill_value=0).to_numpy()
    )
    admit_s = pd.Series(_epoch_seconds(enc["admit_time"]), index=enc["encounter_id"])
    since_admit_s = _epoch_seconds(adverse["timestamp"]) - admit_s.reindex(adverse["encounter_id"]).to_numpy()
    early_ids = set(adverse.loc[since_admit_s < 24 * 3600, "encounter_id"])
    enc["adverse_event_24h"] = enc["encounter_id"].isin(early_ids)

    drift = config.drift
    intercept = (
        BASELINE_INTERCEPT
        if drift.readmission_rate is None
        else intercept_for_rate(enc, drift.readmission_rate, concept_shift=drift.concept_shift)
    )
    enc["oracle_risk"] = readmission_risk(enc, concept_shift=drift.concept_shift, intercept=intercept)
    enc["readmitted_30d"] = rng.random(len(enc)) < enc["oracle_risk"].to_numpy()
    return intercept


def generate(config: GeneratorConfig | None = None) -> Cohort:
    """Generate a cohort; the same config always yields identical tables."""
    config = config or GeneratorConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(8)]
    patients = _patients(streams[0], config)
    enc = _encounters(streams[1], config, patients)
    skeleton = _event_skeleton(streams[2], enc)
    builders = {
        EventType.VITALS: (_vitals, 0, streams[3]),
        EventType.MEDICATION: (_medications, 1, streams[4]),
        EventType.LAB_RESULT: (_labs, 2, streams[5]),
        EventType.ADVERSE_EVENT: (_adverse_events, 3, streams[6]),
    }
    events = {
        kind: build(rng, enc, skeleton[skeleton["kind"] == code].reset_index(drop=True))
        for kind, (build, code, rng) in builders.items()
    }
    intercept = _outcomes(streams[7], config, enc, events)
    return Cohort(config=config, patients=patients, encounters=enc, events=events, readmission_intercept=intercept)


# Columns of the encounter table that only the generator knows (latent truth); never written to the lake's
# gold feature table, only to the oracle table.
LATENT_COLUMNS = (
    "severity",
    "trajectory",
    *(
        f"true_{name}"
        for name in (
            "heart_rate",
            "respiratory_rate",
            "spo2",
            "systolic_bp",
            "diastolic_bp",
            "temperature",
            *LAB_PANEL,
        )
    ),
    "oracle_risk",
)
