"""Every feature of the gold encounter table, defined once: the batch builder and the stream job both read this."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from clinops.data.schemas import COMORBIDITIES, DRUG_CLASSES, LAB_TESTS


class Role(StrEnum):
    ID = "id"  # identifies a row; never a model input (leakage guard)
    TIME = "time"  # when the row's observation window closed
    FEATURE = "feature"  # a model input
    GROUP = "group"  # a subgroup for fairness evaluation (sex, age band); its numeric twin is the feature
    TARGET = "target"  # an outcome label


class Window(StrEnum):
    STAY = "stay"  # admission → discharge
    LAST_24H = "last_24h"  # the 24 hours before discharge: the state a patient leaves in


WINDOW_HOURS_BEFORE_DISCHARGE: dict[Window, float | None] = {Window.STAY: None, Window.LAST_24H: 24.0}

# Vital-sign series aggregated per window; MAP and shock index are derived in silver.
VITAL_SERIES = (
    "heart_rate",
    "systolic_bp",
    "diastolic_bp",
    "spo2",
    "temperature",
    "respiratory_rate",
    "mean_arterial_pressure",
    "shock_index",
)
AGGREGATIONS: dict[str, str] = {
    "last": "last recorded value",
    "mean": "mean",
    "min": "minimum",
    "max": "maximum",
    "std": "sample standard deviation (NaN below two readings)",
    "slope": "least-squares slope per hour against time since admission (NaN below two readings)",
}
# The last day only needs level and trend: the extremes are already in the stay window.
WINDOW_AGGREGATIONS: dict[Window, tuple[str, ...]] = {
    Window.STAY: tuple(AGGREGATIONS),
    Window.LAST_24H: ("mean", "slope"),
}


@dataclass(frozen=True)
class Feature:
    name: str
    role: Role
    dtype: str  # "float64", "int64", "bool" or "string"
    description: str
    source: str = ""  # silver entity or reference table it comes from
    # Targets that this feature would leak into (derived from the same events as the label).
    leaks: tuple[str, ...] = ()


def vital_feature_name(series: str, aggregation: str, window: Window) -> str:
    return f"{series}_{aggregation}_{window.value}"


def _vital_features() -> list[Feature]:
    return [
        Feature(
            vital_feature_name(series, aggregation, window),
            Role.FEATURE,
            "float64",
            f"{series.replace('_', ' ')}: {AGGREGATIONS[aggregation]} over the {window.value} window",
            "vitals",
        )
        for window, aggregations in WINDOW_AGGREGATIONS.items()
        for series in VITAL_SERIES
        for aggregation in aggregations
    ]


ENCOUNTER_FEATURES: tuple[Feature, ...] = (
    Feature("encounter_id", Role.ID, "string", "Opaque encounter id", "encounters"),
    Feature("patient_id", Role.ID, "string", "Opaque patient id (split groups)", "encounters"),
    Feature("discharge_time", Role.TIME, "timestamp", "End of the observation window", "encounters"),
    Feature("age", Role.FEATURE, "int64", "Age in years at admission, 90 for all over 89", "patients"),
    Feature("is_female", Role.FEATURE, "int64", "1 if sex is F", "patients"),
    *(
        Feature(c, Role.FEATURE, "int64", f"1 if the patient has {c.replace('_', ' ')}", "patients")
        for c in COMORBIDITIES
    ),
    Feature("comorbidity_count", Role.FEATURE, "int64", "Number of the comorbidities above", "patients"),
    Feature("sex", Role.GROUP, "string", "Sex (F/M), for subgroup evaluation", "patients"),
    Feature("age_band", Role.GROUP, "string", "Age band, for subgroup evaluation", "patients"),
    Feature("los_hours", Role.FEATURE, "float64", "Length of stay in hours", "encounters"),
    Feature("vitals_count", Role.FEATURE, "int64", "Valid vitals panels recorded during the stay", "vitals"),
    *_vital_features(),
    *(
        Feature(
            f"{m.name}_last",
            Role.FEATURE,
            "float64",
            f"Latest {m.description.lower()} ({m.unit}) of the stay",
            "lab_results",
        )
        for m in LAB_TESTS
    ),
    Feature("medication_count", Role.FEATURE, "int64", "Medication administrations during the stay", "medications"),
    Feature(
        "drug_class_count",
        Role.FEATURE,
        "int64",
        "Distinct drug classes given during the stay",
        "medications",
    ),
    *(
        Feature(
            f"med_{c}_count",
            Role.FEATURE,
            "int64",
            f"Administrations of {c.replace('_', ' ')}s",
            "medications",
        )
        for c in DRUG_CLASSES
    ),
    Feature(
        "adverse_event_count",
        Role.FEATURE,
        "int64",
        "Adverse events recorded during the stay",
        "adverse_events",
        leaks=("adverse_event_24h",),
    ),
    Feature("readmitted_30d", Role.TARGET, "bool", "Readmitted within 30 days of discharge", "outcomes"),
    Feature("adverse_event_24h", Role.TARGET, "bool", "An adverse event within 24 h of admission", "outcomes"),
)
FEATURES_BY_NAME = {f.name: f for f in ENCOUNTER_FEATURES}


def model_inputs(target: str) -> list[str]:
    """Columns a model for ``target`` may read: features, minus any derived from that target's events."""
    return [f.name for f in ENCOUNTER_FEATURES if f.role is Role.FEATURE and target not in f.leaks]
