from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinops.data.schemas import LABS_BY_NAME, VITAL_SIGNS, VITALS_BY_NAME, EventType
from clinops.data.validation import UNIT_CONVERTED_FACTOR, UNIT_INFERRED_FACTOR, validate

ENVELOPE = {
    "event_id": "ev-1",
    "patient_id": "p-1",
    "encounter_id": "e-1",
    "timestamp": "2026-01-02T03:04:05Z",
    "source": "monitor-001",
}


def vitals(**changes) -> dict:
    record = {
        **ENVELOPE,
        "event_type": "vitals",
        "heart_rate": 80,
        "systolic_bp": 120,
        "diastolic_bp": 80,
        "spo2": 97,
        "temperature": 37.0,
        "temperature_unit": "C",
        "respiratory_rate": 16,
    }
    record.update(changes)
    return record


def lab(**changes) -> dict:
    record = {
        **ENVELOPE,
        "event_type": "lab_result",
        "source": "lis",
        "test": "glucose",
        "value": 110,
        "unit": "mg/dL",
    }
    record.update(changes)
    return record


def medication(**changes) -> dict:
    record = {
        **ENVELOPE,
        "event_type": "medication",
        "source": "emar",
        "drug_class": "diuretic",
        "drug": "furosemide",
        "dose": 40,
        "dose_unit": "mg",
        "route": "iv",
    }
    record.update(changes)
    return record


def adverse(**changes) -> dict:
    record = {
        **ENVELOPE,
        "event_type": "adverse_event",
        "source": "incident-report",
        "kind": "fall",
        "grade": 2,
    }
    record.update(changes)
    return record


def run(kind: EventType, *records: dict):
    return validate(kind, pd.DataFrame.from_records(list(records)))


def reasons_of(kind: EventType, record: dict) -> list[str]:
    return run(kind, record).rejected.get(0, [])


def test_clean_vitals_pass_with_derived_metrics() -> None:
    result = run(EventType.VITALS, vitals())
    assert result.rejected == {}
    row = result.valid.iloc[0]
    assert row["pulse_pressure"] == 40
    assert row["mean_arterial_pressure"] == pytest.approx(80 + 40 / 3)
    assert row["shock_index"] == pytest.approx(80 / 120)
    assert row["quality_score"] == 1.0
    assert str(row["timestamp"]) == "2026-01-02 03:04:05+00:00"


@pytest.mark.parametrize("field", ["event_id", "patient_id", "encounter_id", "timestamp", "source"])
@pytest.mark.parametrize("absent", [None, "", "   ", "drop"])
def test_missing_envelope_field_is_quarantined(field, absent) -> None:
    record = vitals()
    if absent == "drop":
        del record[field]
    else:
        record[field] = absent
    assert f"missing_field:{field}" in reasons_of(EventType.VITALS, record)


@pytest.mark.parametrize("stamp", ["2026-02-30T25:61:00Z", "yesterday", "12/31/2026 08:00", "0000-00-00"])
def test_unparseable_timestamp(stamp) -> None:
    assert reasons_of(EventType.VITALS, vitals(timestamp=stamp)) == ["invalid_timestamp"]


def test_wrong_event_type_for_the_stream() -> None:
    assert "wrong_event_type" in reasons_of(EventType.VITALS, vitals(event_type="lab_result"))


@pytest.mark.parametrize("measurement", VITAL_SIGNS, ids=lambda m: m.name)
def test_each_vital_has_hard_limits(measurement) -> None:
    too_high = vitals(**{measurement.name: measurement.hard_max + 1})
    too_low = vitals(**{measurement.name: measurement.hard_min - 1})
    assert f"out_of_range:{measurement.name}" in reasons_of(EventType.VITALS, too_high)
    assert f"out_of_range:{measurement.name}" in reasons_of(EventType.VITALS, too_low)


@pytest.mark.parametrize("text", ["n/a", "see note", "--"])
def test_free_text_in_a_number_is_not_numeric(text) -> None:
    assert reasons_of(EventType.VITALS, vitals(heart_rate=text)) == ["not_numeric:heart_rate"]


def test_numeric_strings_are_accepted() -> None:
    result = run(EventType.VITALS, vitals(heart_rate="88", spo2=" 95 "))
    assert result.rejected == {}
    assert result.valid.loc[0, "heart_rate"] == 88


def test_fahrenheit_is_converted() -> None:
    result = run(EventType.VITALS, vitals(temperature=100.4, temperature_unit="F"))
    row = result.valid.iloc[0]
    assert row["temperature"] == pytest.approx(38.0)
    assert row["unit_converted"]
    assert row["quality_score"] == pytest.approx(UNIT_CONVERTED_FACTOR)


def test_unlabelled_fahrenheit_is_inferred_from_its_range() -> None:
    result = run(EventType.VITALS, vitals(temperature=98.6, temperature_unit=None))
    row = result.valid.iloc[0]
    assert row["temperature"] == pytest.approx(37.0)
    assert row["unit_inferred"]
    assert row["quality_score"] == pytest.approx(UNIT_INFERRED_FACTOR)


def test_unknown_temperature_unit() -> None:
    assert reasons_of(EventType.VITALS, vitals(temperature_unit="K")) == ["unknown_unit:temperature"]


def test_diastolic_must_be_below_systolic() -> None:
    assert reasons_of(EventType.VITALS, vitals(systolic_bp=90, diastolic_bp=95)) == ["diastolic_not_below_systolic"]


def test_a_missing_vital_lowers_quality_but_keeps_the_record() -> None:
    result = run(EventType.VITALS, vitals(spo2=None))
    assert result.rejected == {}
    assert result.valid.loc[0, "quality_score"] == pytest.approx(5 / 6)
    assert math.isnan(result.valid.loc[0, "spo2"])


def test_a_panel_without_any_measurement() -> None:
    empty = vitals(**{m.name: None for m in VITAL_SIGNS})
    assert reasons_of(EventType.VITALS, empty) == ["no_measurements"]


def test_every_reason_is_reported_at_once() -> None:
    record = vitals(patient_id=None, heart_rate=999, spo2="?")
    assert set(reasons_of(EventType.VITALS, record)) == {
        "missing_field:patient_id",
        "out_of_range:heart_rate",
        "not_numeric:spo2",
    }


@pytest.mark.parametrize(
    ("test", "value", "unit", "expected"),
    [
        ("glucose", 5.5, "mmol/L", 5.5 * 18.016),
        ("creatinine", 88.42, "umol/L", 1.0),
        ("glucose", 99, "mg/dL", 99),
        ("lactate", 1.2, "mmol/L", 1.2),
    ],
)
def test_lab_units_are_standardised(test, value, unit, expected) -> None:
    result = run(EventType.LAB_RESULT, lab(test=test, value=value, unit=unit))
    assert result.rejected == {}
    assert result.valid.loc[0, "value"] == pytest.approx(expected)
    assert result.valid.loc[0, "unit"] == LABS_BY_NAME[test].unit


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"test": "unobtainium"}, "unknown_test"),
        ({"test": None}, "missing_field:test"),
        ({"unit": "g/L"}, "unknown_unit:glucose"),
        ({"unit": None}, "missing_field:unit"),
        ({"value": None}, "missing_field:value"),
        ({"value": "high"}, "not_numeric:value"),
        ({"value": 5000}, "out_of_range:value"),
    ],
)
def test_lab_rules(changes, reason) -> None:
    assert reason in reasons_of(EventType.LAB_RESULT, lab(**changes))


def test_dose_in_grams_becomes_milligrams() -> None:
    result = run(EventType.MEDICATION, medication(dose=0.04, dose_unit="g"))
    assert result.rejected == {}
    assert result.valid.loc[0, "dose"] == pytest.approx(40)
    assert result.valid.loc[0, "dose_unit"] == "mg"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"drug_class": "elixir"}, "unknown_drug_class"),
        ({"drug_class": None}, "missing_field:drug_class"),
        ({"dose": -40}, "out_of_range:dose"),
        ({"dose": 0}, "out_of_range:dose"),
        ({"dose": 10_000}, "out_of_range:dose"),
        ({"dose_unit": "units"}, "unknown_unit:dose"),
        ({"route": "telepathic"}, "unknown_route"),
    ],
)
def test_medication_rules(changes, reason) -> None:
    assert reason in reasons_of(EventType.MEDICATION, medication(**changes))


def test_medication_without_route_is_kept_with_lower_quality() -> None:
    result = run(EventType.MEDICATION, medication(route=None))
    assert result.rejected == {}
    assert result.valid.loc[0, "quality_score"] < 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"kind": "alien_abduction"}, "unknown_kind"),
        ({"grade": 9}, "out_of_range:grade"),
        ({"grade": 2.5}, "out_of_range:grade"),
        ({"grade": "bad"}, "not_numeric:grade"),
    ],
)
def test_adverse_event_rules(changes, reason) -> None:
    assert reason in reasons_of(EventType.ADVERSE_EVENT, adverse(**changes))


def test_source_duplicates_are_quarantined_and_replays_dropped() -> None:
    original = vitals()
    resent = vitals(event_id="ev-2")  # same patient, time and source, new id: a re-send
    replay = vitals()  # same id again: the transport delivered it twice
    other_time = vitals(event_id="ev-3", timestamp="2026-01-02T03:05:05Z")
    result = run(EventType.VITALS, original, resent, replay, other_time)
    assert list(result.valid["event_id"]) == ["ev-1", "ev-3"]
    assert result.rejected == {1: ["duplicate"]}
    assert result.replayed == 1


def test_lab_panel_results_at_the_same_second_are_not_duplicates() -> None:
    result = run(EventType.LAB_RESULT, lab(), lab(event_id="ev-2", test="creatinine", value=1.0))
    assert result.rejected == {}
    assert len(result.valid) == 2


def test_nothing_is_lost(small_cohort) -> None:
    import numpy as np

    from clinops.data.dirt import raw_records

    raw = raw_records(small_cohort, EventType.VITALS, np.random.default_rng(0))
    result = validate(EventType.VITALS, raw)
    assert len(result.valid) + len(result.rejected) + result.replayed == len(raw)
    assert all(result.rejected.values())


in_range = {m.name: st.floats(m.hard_min, m.hard_max, allow_nan=False) for m in VITAL_SIGNS}


@settings(max_examples=150, deadline=None)
@given(values=st.fixed_dictionaries(in_range))
def test_property_in_range_vitals_are_kept_unchanged(values) -> None:
    if values["diastolic_bp"] >= values["systolic_bp"]:
        values["diastolic_bp"] = values["systolic_bp"] - 1
    if values["diastolic_bp"] < VITALS_BY_NAME["diastolic_bp"].hard_min:
        return
    # An unlabelled unit would be inferred; here the unit is always stated.
    result = run(EventType.VITALS, vitals(**values))
    assert result.rejected == {}
    for name, value in values.items():
        assert result.valid.loc[0, name] == pytest.approx(value)


@settings(max_examples=150, deadline=None)
@given(
    measurement=st.sampled_from(VITAL_SIGNS),
    excess=st.floats(0.001, 1e6, allow_nan=False),
    above=st.booleans(),
)
def test_property_out_of_range_always_names_the_field(measurement, excess, above) -> None:
    value = measurement.hard_max + excess if above else measurement.hard_min - excess
    assert f"out_of_range:{measurement.name}" in reasons_of(EventType.VITALS, vitals(**{measurement.name: value}))


@settings(max_examples=100, deadline=None)
@given(celsius=st.floats(30, 43, allow_nan=False))
def test_property_fahrenheit_round_trip(celsius) -> None:
    fahrenheit = celsius * 9 / 5 + 32
    result = run(EventType.VITALS, vitals(temperature=fahrenheit, temperature_unit="F"))
    assert result.valid.loc[0, "temperature"] == pytest.approx(celsius)


@pytest.mark.parametrize(
    "stamp", ["2026-01-02T04:04:05+01:00", "2026-01-02T03:04:05.000Z", "2026-01-02 03:04:05Z", "2026-01-02T03:04:05Z"]
)
def test_iso_timestamps_in_any_offset_are_normalised_to_utc(stamp) -> None:
    result = run(EventType.VITALS, vitals(timestamp=stamp))
    assert result.rejected == {}
    assert str(result.valid.loc[0, "timestamp"]) == "2026-01-02 03:04:05+00:00"
