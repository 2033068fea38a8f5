from __future__ import annotations

import orjson
import pytest

from clinops.data.tabular import UCI_DIABETES, load_csv, load_mapping
from clinops.errors import ClinopsError
from clinops.lake.store import Lake

HEADER = (
    "encounter_id,patient_nbr,race,gender,age,weight,time_in_hospital,num_lab_procedures,num_procedures,"
    "num_medications,number_outpatient,number_emergency,number_inpatient,number_diagnoses,insulin,change,"
    "diabetesMed,readmitted"
)
ROWS = [
    "2278392,8222157,Caucasian,Female,[0-10),?,1,41,0,1,0,0,0,1,No,No,No,NO",
    "149190,55629189,Caucasian,Female,[10-20),?,3,59,0,18,0,0,0,9,Up,Ch,Yes,>30",
    "64410,86047875,AfricanAmerican,Male,[90-100),?,2,11,5,13,2,0,1,6,No,No,Yes,<30",
    "500364,82442376,Caucasian,Male,[30-40),?,2,44,1,sixteen,0,0,0,7,Up,Ch,Yes,<30",
    "16680,42519267,Caucasian,Unknown/Invalid,[40-50),?,1,51,0,8,0,0,0,5,Steady,Ch,Yes,NO",
]


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "diabetic_data.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def test_uci_file_maps_onto_the_gold_contract(csv_file, lake: Lake) -> None:
    result = load_csv(csv_file, UCI_DIABETES, lake, table="uci")
    assert (result.rows, result.loaded, result.quarantined) == (5, 4, 1)
    gold = lake.read_parquet("gold/uci/").to_pandas()
    assert list(gold["readmitted_30d"]) == [False, False, True, False]
    assert list(gold["los_hours"]) == [24.0, 72.0, 48.0, 24.0]
    assert list(gold["age"]) == [5, 15, 90, 45]  # bracket midpoints, 90+ capped
    assert list(gold["age_band"]) == ["18-39", "18-39", "90+", "40-64"]
    assert gold["sex"].isna().sum() == 1  # "Unknown/Invalid" is missing, not a third sex
    assert list(gold["med_insulin_count"]) == [False, True, False, True]


def test_source_identifiers_never_reach_the_lake(csv_file, lake: Lake) -> None:
    load_csv(csv_file, UCI_DIABETES, lake, table="uci")
    gold = lake.read_parquet("gold/uci/").to_pandas()
    assert not set(gold["patient_id"]) & {"8222157", "55629189"}
    assert gold["patient_id"].str.fullmatch(r"[0-9a-f]{16}").all()


def test_unusable_rows_are_quarantined_with_reasons(csv_file, lake: Lake) -> None:
    load_csv(csv_file, UCI_DIABETES, lake, table="uci")
    (key,) = lake.keys("quarantine/uci/")
    entry = orjson.loads(lake.read_bytes(key))
    assert entry["reasons"] == ["not_numeric:num_medications"]
    assert entry["line"] == 5


def test_missing_columns_are_named(tmp_path, lake: Lake) -> None:
    path = tmp_path / "other.csv"
    path.write_text("encounter_id,readmitted\n1,NO\n")
    with pytest.raises(ClinopsError, match=r"lacks columns .*patient_nbr"):
        load_csv(path, UCI_DIABETES, lake, table="uci")


def test_unknown_mapping_and_bad_mapping_files(tmp_path) -> None:
    with pytest.raises(ClinopsError, match="neither a built-in"):
        load_mapping("no-such-mapping")
    bad = tmp_path / "mapping.yaml"
    bad.write_text("name: x\ncolumns: {a: {source: b, transform: sorcery}}\n")
    with pytest.raises(ClinopsError, match="invalid mapping file"):
        load_mapping(str(bad))


def test_custom_yaml_mapping(tmp_path, lake: Lake) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "name: tiny\ncolumns:\n  encounter_id: {source: id, transform: opaque_id}\n"
        "  patient_id: {source: pid, transform: opaque_id}\n  heart_rate_mean_stay: {source: hr}\n"
        "  readmitted_30d: {source: back, transform: equals, value: 'yes'}\n"
    )
    data = tmp_path / "tiny.csv"
    data.write_text("id,pid,hr,back\n1,9,80,yes\n2,9,90,no\n")
    result = load_csv(data, load_mapping(str(mapping)), lake, table="tiny")
    assert result.loaded == 2
    assert list(lake.read_parquet("gold/tiny/").to_pandas()["heart_rate_mean_stay"]) == [80, 90]
