from __future__ import annotations

import orjson
import pyarrow.parquet as pq
import pytest

from clinops.data.emit import emit_to_lake
from clinops.data.schemas import EventType
from clinops.lake.silver import bronze_to_silver, silver_schema


@pytest.fixture
def silver_lake(lake, small_cohort):
    emitted = emit_to_lake(small_cohort, lake, partitions=2, batch_size=500)
    report = bronze_to_silver(lake)
    return lake, emitted, report


def test_every_bronze_record_lands_in_silver_or_quarantine(silver_lake) -> None:
    lake, emitted, report = silver_lake
    for topic, entity in [
        ("patient-vitals", "vitals"),
        ("medications", "medications"),
        ("lab-results", "lab_results"),
        ("adverse-events", "adverse_events"),
    ]:
        r = report.entities[entity]
        assert r.records == emitted.records[topic]
        assert r.valid + r.quarantined + r.replayed == r.records
        quarantined_lines = sum(
            len(lake.read_bytes(k).splitlines()) for k in lake.keys(f"quarantine/{entity}/", ".validation.jsonl")
        )
        assert quarantined_lines == r.quarantined
        silver_rows = sum(pq.read_metadata(lake.path(k)).num_rows for k in lake.keys(f"silver/{entity}/"))
        assert silver_rows == r.valid


def test_quarantine_keeps_the_record_and_its_reasons(silver_lake) -> None:
    lake, _, report = silver_lake
    assert report.quarantined > 0
    key = lake.keys("quarantine/vitals/")[0]
    entry = orjson.loads(lake.read_bytes(key).splitlines()[0])
    assert entry["reasons"]
    assert entry["record"]["event_type"] == "vitals"
    assert isinstance(entry["line"], int)


def test_dirt_is_caught_and_repaired(silver_lake) -> None:
    lake, _, report = silver_lake
    reasons = report.reason_totals()
    for expected in ("duplicate", "invalid_timestamp", "missing_field:patient_id", "out_of_range:heart_rate"):
        assert reasons.get(expected, 0) > 0, expected
    vitals = lake.read_parquet("silver/vitals/").to_pandas()
    assert vitals["unit_converted"].sum() > 0  # °F readings converted
    assert vitals["unit_inferred"].sum() > 0  # unlabelled °F inferred
    assert vitals["temperature"].dropna().between(30, 43).all()
    labs = lake.read_parquet("silver/lab_results/").to_pandas()
    assert (labs.loc[labs["test"] == "glucose", "unit"] == "mg/dL").all()


def test_silver_has_the_declared_schema_and_date_partitions(silver_lake) -> None:
    lake, _, _ = silver_lake
    keys = lake.keys("silver/medications/")
    assert all("/date=2026-" in k for k in keys)
    table = pq.read_table(lake.path(keys[0]))
    assert table.schema.equals(silver_schema(EventType.MEDICATION), check_metadata=False)


def test_rerun_yields_identical_silver(silver_lake) -> None:
    lake, _, _ = silver_lake
    before = {k: lake.read_bytes(k) for k in lake.keys("silver/") + lake.keys("quarantine/")}
    bronze_to_silver(lake)
    after = {k: lake.read_bytes(k) for k in lake.keys("silver/") + lake.keys("quarantine/")}
    assert before == after
