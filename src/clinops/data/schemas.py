"""Record schemas of the four clinical event streams: fields, canonical units and physiological ranges."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EventType(StrEnum):
    VITALS = "vitals"
    MEDICATION = "medication"
    LAB_RESULT = "lab_result"
    ADVERSE_EVENT = "adverse_event"


# One Kafka topic per event type (DESIGN §6); the lake's bronze folders carry the same names.
TOPIC_BY_EVENT_TYPE: dict[EventType, str] = {
    EventType.VITALS: "patient-vitals",
    EventType.MEDICATION: "medications",
    EventType.LAB_RESULT: "lab-results",
    EventType.ADVERSE_EVENT: "adverse-events",
}
EVENT_TYPE_BY_TOPIC = {topic: kind for kind, topic in TOPIC_BY_EVENT_TYPE.items()}

# Silver entity (table) name per event type.
ENTITY_BY_EVENT_TYPE: dict[EventType, str] = {
    EventType.VITALS: "vitals",
    EventType.MEDICATION: "medications",
    EventType.LAB_RESULT: "lab_results",
    EventType.ADVERSE_EVENT: "adverse_events",
}

# Every event carries this envelope; a record missing any of it cannot be placed in time or attributed.
ENVELOPE_FIELDS = ("event_id", "event_type", "patient_id", "encounter_id", "timestamp", "source")


@dataclass(frozen=True)
class Measurement:
    """A numeric field: its canonical unit, accepted alternative units and physiological limits.

    ``hard_min``/``hard_max`` bound what is physically possible for a living patient: a value outside them
    is a device or transcription error, never a reading to keep.
    """

    name: str
    unit: str
    hard_min: float
    hard_max: float
    description: str
    # alternative unit → (scale, offset) so that canonical = value * scale + offset
    conversions: dict[str, tuple[float, float]] = field(default_factory=dict)
    # When the unit field is absent, a value in this range is taken to be in this alternative unit.
    infer_unit_when: tuple[str, float, float] | None = None


VITAL_SIGNS: tuple[Measurement, ...] = (
    Measurement("heart_rate", "bpm", 20, 250, "Heart rate"),
    Measurement("systolic_bp", "mmHg", 40, 260, "Systolic blood pressure"),
    Measurement("diastolic_bp", "mmHg", 20, 160, "Diastolic blood pressure"),
    Measurement("spo2", "%", 50, 100, "Peripheral oxygen saturation"),
    Measurement(
        "temperature",
        "C",
        30,
        43,
        "Body temperature",
        conversions={"F": (5 / 9, -32 * 5 / 9)},
        # No plausible body temperature in °C exceeds 50; no plausible one in °F is below 86.
        infer_unit_when=("F", 86, 110),
    ),
    Measurement("respiratory_rate", "breaths/min", 4, 60, "Respiratory rate"),
)
VITALS_BY_NAME = {m.name: m for m in VITAL_SIGNS}

# Labs: one test per event; canonical units are the US conventional ones.
GLUCOSE_MMOL_TO_MGDL = 18.016
CREATININE_UMOL_TO_MGDL = 1 / 88.42
LAB_TESTS: tuple[Measurement, ...] = (
    Measurement(
        "glucose",
        "mg/dL",
        10,
        1500,
        "Blood glucose",
        conversions={"mmol/L": (GLUCOSE_MMOL_TO_MGDL, 0.0)},
    ),
    Measurement(
        "creatinine",
        "mg/dL",
        0.1,
        20,
        "Serum creatinine",
        conversions={"umol/L": (CREATININE_UMOL_TO_MGDL, 0.0)},
    ),
    Measurement("lactate", "mmol/L", 0.1, 30, "Blood lactate"),
    Measurement("wbc", "10^9/L", 0.1, 200, "White blood cell count"),
    Measurement("hemoglobin", "g/dL", 2, 25, "Hemoglobin"),
    Measurement("sodium", "mmol/L", 95, 190, "Serum sodium"),
    Measurement("potassium", "mmol/L", 1.0, 10, "Serum potassium"),
)
LABS_BY_NAME = {m.name: m for m in LAB_TESTS}

# Medication catalogue: drug class → (drug, canonical dose unit, typical dose, max single dose, route)
MEDICATIONS: dict[str, tuple[str, str, float, float, str]] = {
    "antibiotic": ("ceftriaxone", "mg", 1000, 4000, "iv"),
    "anticoagulant": ("heparin", "units", 5000, 40000, "sc"),
    "insulin": ("insulin_glargine", "units", 12, 150, "sc"),
    "diuretic": ("furosemide", "mg", 40, 600, "iv"),
    "beta_blocker": ("metoprolol", "mg", 25, 400, "po"),
    "opioid": ("morphine", "mg", 4, 60, "iv"),
    "ace_inhibitor": ("lisinopril", "mg", 10, 80, "po"),
    "corticosteroid": ("prednisone", "mg", 20, 250, "po"),
}
DRUG_CLASSES = tuple(MEDICATIONS)
# Dose given in grams instead of milligrams is a classic unit slip; we convert it.
DOSE_UNIT_CONVERSIONS: dict[tuple[str, str], float] = {("g", "mg"): 1000.0}
MEDICATION_ROUTES = ("iv", "po", "sc", "im")

ADVERSE_EVENT_KINDS = (
    "fall",
    "hypoglycemia",
    "bleeding",
    "acute_kidney_injury",
    "sepsis_alert",
    "pressure_injury",
    "adverse_drug_reaction",
)
ADVERSE_GRADE_RANGE = (1, 5)  # CTCAE-style grade

# HIPAA safe harbour: ages over 89 are aggregated into one category.
AGE_CAP = 90
COMORBIDITIES = ("diabetes", "heart_failure", "ckd", "copd", "hypertension")


def age_band(age: int) -> str:
    if age >= AGE_CAP:
        return "90+"
    if age >= 75:
        return "75-89"
    if age >= 65:
        return "65-74"
    if age >= 40:
        return "40-64"
    return "18-39"
