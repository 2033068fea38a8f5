"""The known 30-day readmission risk function of the synthetic cohort: the oracle every model is judged against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import expit

# The per-encounter quantities the risk is a function of. Each one is observable in the gold table, but only
# through noisy measurements (vitals and labs) — so the oracle, which sees the true values, bounds any model.
RISK_INPUTS = (
    "age",
    "heart_failure",
    "ckd",
    "diabetes",
    "copd",
    "true_heart_rate",
    "true_spo2",
    "trajectory",
    "los_hours",
    "true_creatinine",
    "true_lactate",
    "true_glucose",
    "adverse_event_count",
    "drug_class_count",
)

BASELINE_INTERCEPT = -3.2


def _terms(x: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Named additive terms of the logit; the two concepts below weigh the same terms differently."""
    age = x["age"].astype(float)
    return {
        "age": (age - 65) / 10,
        "heart_failure": x["heart_failure"].astype(float),
        "ckd": x["ckd"].astype(float),
        "diabetes": x["diabetes"].astype(float),
        "copd": x["copd"].astype(float),
        "tachycardia": (x["true_heart_rate"] - 80) / 10,
        "hypoxia": np.clip(96 - x["true_spo2"], 0, None),
        "trajectory": x["trajectory"].astype(float),
        "los": np.log(x["los_hours"] / 72),
        "creatinine": np.log(x["true_creatinine"]),
        "lactate_high": (x["true_lactate"] > 2.0).astype(float),
        "hyperglycemia": (x["true_glucose"] > 200).astype(float),
        "frail_heart_failure": x["heart_failure"] * (age >= 75),
        "adverse_events": x["adverse_event_count"].astype(float),
        "polypharmacy": x["drug_class_count"].astype(float),
    }


# Baseline concept: deterioration at discharge, lactate and heart failure in the elderly drive readmission.
BASELINE_WEIGHTS: dict[str, float] = {
    "age": 0.30,
    "heart_failure": 0.55,
    "ckd": 0.40,
    "diabetes": 0.25,
    "copd": 0.30,
    "tachycardia": 0.35,
    "hypoxia": 0.15,
    "trajectory": 0.70,
    "los": 0.35,
    "creatinine": 0.50,
    "lactate_high": 0.70,
    "hyperglycemia": 0.0,
    "frail_heart_failure": 0.45,
    "adverse_events": 0.35,
    "polypharmacy": 0.08,
}
# Shifted concept (e.g. a new discharge protocol): trajectory matters less, kidney function and glucose more.
SHIFTED_WEIGHTS: dict[str, float] = {
    **BASELINE_WEIGHTS,
    "trajectory": 0.10,
    "creatinine": 1.40,
    "hyperglycemia": 0.90,
    "tachycardia": 0.10,
    "frail_heart_failure": 0.0,
}


def readmission_logit(
    latents: pd.DataFrame, *, concept_shift: float = 0.0, intercept: float = BASELINE_INTERCEPT
) -> NDArray[Any]:
    """Log-odds of 30-day readmission; ``concept_shift`` in [0, 1] moves from the baseline to the shifted concept."""
    if not 0.0 <= concept_shift <= 1.0:
        raise ValueError(f"concept_shift must be within [0, 1], got {concept_shift}")
    missing = [name for name in RISK_INPUTS if name not in latents.columns]
    if missing:
        raise KeyError(f"risk inputs missing: {', '.join(missing)}")
    terms = _terms({name: latents[name].to_numpy() for name in RISK_INPUTS})
    logit = np.full(len(latents), intercept, dtype=float)
    for name, values in terms.items():
        weight = (1 - concept_shift) * BASELINE_WEIGHTS[name] + concept_shift * SHIFTED_WEIGHTS[name]
        logit += weight * values
    return logit


def readmission_risk(
    latents: pd.DataFrame, *, concept_shift: float = 0.0, intercept: float = BASELINE_INTERCEPT
) -> NDArray[Any]:
    """Probability of 30-day readmission per encounter: the oracle score."""
    return np.asarray(expit(readmission_logit(latents, concept_shift=concept_shift, intercept=intercept)))


def intercept_for_rate(latents: pd.DataFrame, rate: float, *, concept_shift: float = 0.0) -> float:
    """The intercept at which the cohort's mean risk equals ``rate`` (prior shift with the concept unchanged)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"readmission rate must be within (0, 1), got {rate}")
    slope_part = readmission_logit(latents, concept_shift=concept_shift, intercept=0.0)

    def excess(intercept: float) -> float:
        return float(np.mean(expit(slope_part + intercept))) - rate

    return float(brentq(excess, -30.0, 30.0, xtol=1e-9))
