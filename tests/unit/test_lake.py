from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from clinops.lake.bronze import MAX_RECORD_BYTES, BronzeWriter, TransportRecord
from clinops.lake.layout import bronze_object, parse_bronze_key
from clinops.lake.store import Lake, LakeError

HOUR_MS = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_write_is_atomic_and_leaves_nothing_on_failure(lake, monkeypatch) -> None:
    lake.write_bytes("a/b.txt", b"first")
    assert lake.read_bytes("a/b.txt") == b"first"

    class FailingRename:
        """The real filesystem, except that the final rename fails (e.g. the disk filled up)."""

        def __init__(self, fs) -> None:
            self._fs = fs

        def __getattr__(self, name: str):
            return getattr(self._fs, name)

        def move(self, src: str, dst: str) -> None:
            raise OSError("disk full")

    monkeypatch.setattr(lake, "fs", FailingRename(lake.fs))
    with pytest.raises(OSError, match="disk full"):
        lake.write_bytes("a/b.txt", b"second")
    # The old object is intact and no temp file is left behind.
    assert lake.read_bytes("a/b.txt") == b"first"
    assert [p.name for p in Path(lake.path("a")).iterdir()] == ["b.txt"]


def test_in_flight_temp_files_are_invisible(lake) -> None:
    lake.write_bytes("x/visible.jsonl", b"{}\n")
    lake.write_bytes("x/.partial.jsonl.tmp", b"{")
    lake.write_bytes("x/_SUCCESS", b"")
    assert lake.keys("x/") == ["x/visible.jsonl"]


def test_parquet_round_trip_and_missing_data(lake) -> None:
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    lake.write_parquet("t/part-0.parquet", table)
    assert lake.read_parquet("t/").equals(table)
    with pytest.raises(LakeError, match="no Parquet data"):
        lake.read_parquet("nothing/")
    with pytest.raises(LakeError, match="no object"):
        lake.read_bytes("nothing/here")


def test_unsupported_uri_is_refused() -> None:
    with pytest.raises(LakeError, match="unsupported lake URI"):
        Lake("gs://bucket/lake")


def test_s3_uri_maps_keys_under_the_bucket(monkeypatch) -> None:
    monkeypatch.setenv("CLINOPS_S3_ENDPOINT", "http://127.0.0.1:9")
    lake = Lake("s3://clinops-lake/prefix")
    assert lake.uri("bronze/x.jsonl") == "s3://clinops-lake/prefix/bronze/x.jsonl"
    assert not lake.is_local


def test_bronze_key_names_topic_partition_and_offsets() -> None:
    obj = bronze_object("patient-vitals", 2, 100, 199, T0 + 5 * HOUR_MS + 1234)
    assert obj.key == "bronze/patient-vitals/date=2026-01-01/hour=05/patient-vitals-2-100-199.jsonl"
    assert parse_bronze_key(obj.key) == obj
    with pytest.raises(ValueError, match="not a bronze object key"):
        parse_bronze_key("bronze/x/y.jsonl")


def _records(offsets: range, hour_of: callable) -> list[TransportRecord]:
    return [
        TransportRecord(offset=o, timestamp_ms=T0 + hour_of(o) * HOUR_MS, value=orjson.dumps({"n": o})) for o in offsets
    ]


def test_bronze_writer_cuts_a_batch_at_hour_boundaries(lake) -> None:
    records = _records(range(10, 20), lambda o: 0 if o < 15 else 1)
    result = BronzeWriter(lake).write("medications", 0, records)
    assert result.objects == [
        "bronze/medications/date=2026-01-01/hour=00/medications-0-10-14.jsonl",
        "bronze/medications/date=2026-01-01/hour=01/medications-0-15-19.jsonl",
    ]
    lines = lake.read_bytes(result.objects[0]).splitlines()
    assert [orjson.loads(line)["n"] for line in lines] == [10, 11, 12, 13, 14]


def test_rewriting_a_batch_overwrites_never_duplicates(lake) -> None:
    records = _records(range(0, 50), lambda o: 0)
    writer = BronzeWriter(lake)
    writer.write("lab-results", 1, records)
    writer.write("lab-results", 1, records)  # e.g. a crash before the offset commit, then a retry
    keys = lake.keys("bronze/lab-results/")
    assert keys == ["bronze/lab-results/date=2026-01-01/hour=00/lab-results-1-0-49.jsonl"]
    assert len(lake.read_bytes(keys[0]).splitlines()) == 50


def test_malformed_messages_go_to_quarantine_with_reasons(lake) -> None:
    records = [
        TransportRecord(0, T0, b'{"ok": 1}'),
        TransportRecord(1, T0, b"{not json"),
        TransportRecord(2, T0, b"[1, 2]"),
        TransportRecord(3, T0, b'{\n "multi": "line"\n}'),
    ]
    result = BronzeWriter(lake).write("adverse-events", 0, records)
    assert result.records == 2
    assert result.quarantined == 2
    assert lake.read_bytes(result.objects[0]).splitlines() == [b'{"ok": 1}', b'{"multi":"line"}']
    (quarantined,) = lake.keys("quarantine/adverse_events/")
    assert quarantined.endswith("adverse-events-0-0-3.ingest.jsonl")
    entries = [orjson.loads(line) for line in lake.read_bytes(quarantined).splitlines()]
    assert [e["offset"] for e in entries] == [1, 2]
    assert entries[0]["reasons"][0].startswith("malformed_json")
    assert entries[1]["reasons"] == ["malformed_json: not a JSON object"]
    assert entries[0]["raw"] == "{not json"


def test_an_oversized_message_is_quarantined_whole(lake) -> None:
    huge = orjson.dumps({"event_id": "e", "note": "x" * (MAX_RECORD_BYTES + 1)})
    result = BronzeWriter(lake).write("adverse-events", 0, [TransportRecord(0, T0, huge)])
    assert (result.records, result.quarantined) == (0, 1)
    (entry,) = [orjson.loads(line) for line in lake.read_bytes(lake.keys("quarantine/adverse_events/")[0]).splitlines()]
    assert entry["reasons"] == [f"oversized: {len(huge)} bytes (limit {MAX_RECORD_BYTES})"]
    assert entry["raw"].encode() == huge
