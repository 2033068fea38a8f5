from __future__ import annotations

import random
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from clinops.data.emit import emit_to_lake
from clinops.data.schemas import EventType
from clinops.data.validation import _parse_timestamps
from clinops.lake.silver import bronze_to_silver, silver_schema
from clinops.streaming.flink.cache import missing_classes
from clinops.streaming.flink.silver_sql import JAVA_FUNCTIONS, JobSpec, SourceKind, statements


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


# --- the Flink job's Java timestamp function against the batch parser ------------------------------------------

UDF_SOURCES = Path(__file__).resolve().parents[2] / "scripts" / "flink-udf" / "src" / "main" / "java"
# Reads hex-encoded UTF-8 texts, one a line, and prints TimestampText.parse of each ("null" for none).
HARNESS = """
import java.io.*;
import java.nio.charset.StandardCharsets;
public class Harness {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            byte[] bytes = new byte[line.length() / 2];
            for (int i = 0; i < bytes.length; i++) {
                bytes[i] = (byte) Integer.parseInt(line.substring(2 * i, 2 * i + 2), 16);
            }
            Long parsed = io.clinops.flink.TimestampText.parse(new String(bytes, StandardCharsets.UTF_8));
            out.append(parsed == null ? "null" : parsed.toString()).append('\\n');
        }
        System.out.print(out);
    }
}
"""
EDGE_TIMESTAMPS = [
    "2026-01-02T00:00:00Z",
    "2026-02-30T00:13:00Z",  # Arrow's strptime counts on into March
    "2026-01-02T00:00:60Z",
    "2026-1-2T3:4:5Z",
    "026-01-02T00:00:00Z",
    "2026-01-02T 0:00:00Z",
    "2026-01-02T25:61:00Z",
    "2026-01-02T01:10:00+01:00",
    "2026-01-02 00:12:00Z",
    "2026-01-02T00:11:00.250Z",
    "2026-01-02T00:00:00.",
    "2026-01-02T00:00:00.1234567890123456789Z",
    "1969-12-31T23:59:59.9995Z",
    "1677-09-21T00:12:43.145224192Z",
    "1677-09-21T00:12:43.1452241925Z",
    "1677-09-21T00:12:43.145224191999Z",
    "2262-04-11T23:47:16.854775807Z",
    "2262-04-11T23:47:16.854775808Z",
    "2262-04-11T23:30:00-01:00",  # pandas' offset arithmetic wraps around
    "2026",
    "2026-01",
    "202601",
    "20260102",
    "20260102T030405",
    "2026/01/02 3:04",
    "2026 01 02 03",
    "2026-01-02T3",
    "2026-01-02T00:00:00 Z",
    "2026-01-02T00:00:00+5",
    "2026-01-02T00:00:00+05:3",
    "2026-01-02T00:00:00+24:00",
    "2026-01-02T00:00:00\x0bZ",
    "2026-01-02T00:00:00\x1cZ",
    "2026-01-02T00:00:00\u3000Z",
    "-2026-01-02",
    "0000-01-01T00:00:00Z",
    "NaT",
    "nan",
    "yesterday",
    "12/31/2026 08:00",
    "0000-00-00",
]
_PIECES = {
    "year": ["2026", "1677", "2262", "0000", "1970", "1969", "2024", "26", "12026", "-2026", "+2026"],
    "sep": ["-", "-", "-", "/", ".", "\\", " ", "", "x"],
    "month": ["01", "1", "12", "13", "00", "2", "001"],
    "day": ["01", "1", "28", "29", "30", "31", "32", "00"],
    "dt": ["T", "T", " ", "t", "", "  "],
    "hour": ["00", "0", "23", "24", "3", "012"],
    "hms": [":", ":", "", " "],
    "minute": ["00", "0", "59", "60", "5"],
    "second": ["00", "0", "59", "60", "61", "75"],
    "fraction": ["", "", ".", ".5", ".123456", ".1234567", ".123456789012345678", ".1234567890123456789", ",5"],
    "zone": ["", "Z", "Z", "z", " Z", "+01:00", "-01:00", "+0530", "+5", "+05:3", "+24:00", "+01:60", "+", "ZZ", " "],
}
_NOISE = [*"0123456789-:T Z+./\t\x0bz\x00", "\u3000", "\u00e9", "\U0001f600", "\x85"]


def _timestamp_texts(rng: random.Random, count: int) -> list[str]:
    """Edge cases, then texts assembled from the parsers' pieces, some with a character changed, some valid."""
    texts = list(EDGE_TIMESTAMPS)
    for _ in range(count):
        if rng.random() < 0.5:
            pick = {name: rng.choice(values) for name, values in _PIECES.items()}
            parts = [pick["year"], pick["sep"], pick["month"], pick["sep"], pick["day"], pick["dt"], pick["hour"]]
            parts += [pick["hms"], pick["minute"], pick["hms"], pick["second"], pick["fraction"], pick["zone"]]
            text = "".join(parts[: rng.choice([1, 3, 5, 7, 9, 11, 13, 13, 13])])
            for _ in range(rng.choice([0, 0, 1, 2])):
                at, noise = rng.randrange(len(text) + 1), rng.choice(_NOISE)
                text = text[:at] + noise + text[at + rng.choice([0, 1]) :]
        else:
            # Mostly within pandas' nanosecond range, where its ISO 8601 parser yields a time.
            year = rng.randint(1678, 2261) if rng.random() < 0.9 else rng.randint(0, 9999)
            date = f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}"
            clock = f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            fraction = "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 19)))
            text = date + rng.choice(["T", " "]) + clock + rng.choice(["", fraction]) + rng.choice(_PIECES["zone"])
        texts.append(text)
    return texts


def test_java_timestamp_function_reads_texts_as_the_batch_validator_does(tmp_path: Path) -> None:
    """Record by record (pandas carries a parsed offset over to the next record after a failed parse; a stream
    judges each record alone)."""
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK on PATH")
    (tmp_path / "Harness.java").write_text(HARNESS)
    sources = [str(tmp_path / "Harness.java"), str(UDF_SOURCES / "io" / "clinops" / "flink" / "TimestampText.java")]
    subprocess.run(["javac", "-d", str(tmp_path), *sources], check=True, capture_output=True)
    # The SQL hands the function the stripped text, as the batch validator strips before parsing.
    texts = pc.utf8_trim_whitespace(pa.array(_timestamp_texts(random.Random(11), 3000))).to_pylist()
    done = subprocess.run(
        ["java", "-cp", str(tmp_path), "Harness"],
        input="".join(text.encode("utf-8").hex() + "\n" for text in texts),
        capture_output=True,
        text=True,
        check=True,
    )
    java = [None if line == "null" else int(line) for line in done.stdout.split()]
    batch = [_parse_timestamps(pd.Series([text], dtype="string[pyarrow]")) for text in texts]
    expected = [None if parsed.isna().iloc[0] else int(parsed.astype("int64").iloc[0]) for parsed in batch]
    differing = [(text, want, got) for text, want, got in zip(texts, expected, java, strict=True) if want != got]
    assert differing == []
    assert sum(value is not None for value in expected) > 800


def test_now_and_today_read_the_clock(tmp_path: Path) -> None:
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK on PATH")
    (tmp_path / "Harness.java").write_text(HARNESS)
    sources = [str(tmp_path / "Harness.java"), str(UDF_SOURCES / "io" / "clinops" / "flink" / "TimestampText.java")]
    subprocess.run(["javac", "-d", str(tmp_path), *sources], check=True, capture_output=True)
    before = time.time() * 1000
    done = subprocess.run(
        ["java", "-cp", str(tmp_path), "Harness"],
        input="".join(text.encode().hex() + "\n" for text in ("now", "NOW")),
        capture_output=True,
        text=True,
        check=True,
    )
    now, upper = done.stdout.split()
    assert int(now) >= before - 1000
    assert upper == "null"


def test_a_missing_java_function_class_is_named(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    with zipfile.ZipFile(jars / "other.jar", "w") as archive:
        archive.writestr("io/clinops/flink/Other.class", b"")
    classes = list(JAVA_FUNCTIONS.values())
    assert missing_classes(tmp_path, classes) == classes
    with zipfile.ZipFile(jars / "udf.jar", "w") as archive:
        for name in classes:
            archive.writestr(name.replace(".", "/") + ".class", b"")
    assert missing_classes(tmp_path, classes) == []


@pytest.mark.parametrize("source", list(SourceKind))
def test_the_job_registers_every_function_it_calls_as_java(source: SourceKind) -> None:
    spec = JobSpec(lake_uri="file:///lake", source=source, bootstrap="127.0.0.1:9092")
    script = statements(spec).script()
    for name, cls in JAVA_FUNCTIONS.items():
        assert f"FUNCTION IF NOT EXISTS {name} AS '{cls}' LANGUAGE JAVA" in script
        assert f"{name}(" in script
    assert "LANGUAGE PYTHON" not in script
