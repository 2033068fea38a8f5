"""Bronze → silver on Flink (parallelism 2): our SQL job against the same job with one Python UDF per event.

Both are PyFlink jobs on a local mini-cluster in the stream env over the same bronze (file source: a generated
cohort laid out as the ingestor writes a replayed backlog), with the same line numbering, event-id and natural-key
Window Top-N dedupe and Parquet/quarantine sinks. They differ in the per-event work only: Flink SQL built-ins
generated from the shared rules and one Java function for timestamps (ours), or one row-at-a-time Python scalar UDF
calling a per-record validator (the peer, the way a first PyFlink port of the batch validator is written). Both
must keep the same silver events and quarantine the same records for the same reasons. Throughput is events over
the job's net runtime on the cluster (start-up and planning excluded; both are also printed end to end). Both
jobs get the same job settings from the same code (parallelism, checkpointing, state backend, and the local JVM's
JIT and collector options of a bounded run: C1 only, parallel GC). Prints one JSON line.

Runs in the core env; with ``--peer-job`` it is the peer job itself, run by the stream env's python.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from clinops.data.schemas import (
    ADVERSE_EVENT_KINDS,
    ADVERSE_GRADE_RANGE,
    DOSE_UNIT_CONVERSIONS,
    ENTITY_BY_EVENT_TYPE,
    ENVELOPE_FIELDS,
    LABS_BY_NAME,
    MEDICATION_ROUTES,
    MEDICATIONS,
    TOPIC_BY_EVENT_TYPE,
    VITAL_SIGNS,
    VITALS_BY_NAME,
    EventType,
)
from clinops.data.validation import DEDUPE_DISCRIMINATOR, UNIT_CONVERTED_FACTOR, UNIT_INFERRED_FACTOR
from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.layout import bronze_prefix, silver_prefix
from clinops.lake.silver import silver_schema
from clinops.lake.store import Lake

JOB_TIMEOUT_S = 3600
INGEST_BATCH = 5000
BASE_ARRIVAL_MS = 1_767_312_000_000  # 2026-01-02T00:00:00Z

# --- the peer's per-record validator: the batch rules, one parsed record at a time ----------------------------


def _text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    return None if value is None else str(value).strip()


def _number(record: dict[str, Any], name: str) -> tuple[float | None, bool]:
    """(value, not numeric): numbers and numeric text, as pandas.to_numeric reads them."""
    value = record.get(name)
    if value is None:
        return None, False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, True
    return (None, True) if math.isnan(number) else (number, False)


def _timestamp_ms(text: str) -> int | None:
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        import pandas as pd

        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        return None if pd.isna(parsed) else int(parsed.value // 1_000_000)
    return int(moment.timestamp() * 1000)


def _convert(value: float | None, unit: str | None, conversions: dict[str, tuple[float, float]]) -> float | None:
    if value is None or unit not in conversions:
        return value
    scale, offset = conversions[unit]
    return round(value * scale + offset, 6)


def _outside(value: float | None, low: float, high: float) -> bool:
    return value is not None and (value < low or value > high)


def _vitals(record: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    values: dict[str, float | None] = {}
    for m in VITAL_SIGNS:
        values[m.name], not_numeric = _number(record, m.name)
        if not_numeric:
            reasons.append(f"not_numeric:{m.name}")
    temperature = VITALS_BY_NAME["temperature"]
    assert temperature.infer_unit_when is not None
    inferred, low, high = temperature.infer_unit_when
    raw_temperature, unit = values["temperature"], _text(record, "temperature_unit")
    unlabelled = unit is None and raw_temperature is not None
    if unlabelled:
        assert raw_temperature is not None
        unit = inferred if low <= raw_temperature <= high else temperature.unit
    values["temperature"] = _convert(raw_temperature, unit, temperature.conversions)
    if unit != temperature.unit and unit not in temperature.conversions and raw_temperature is not None:
        reasons.append("unknown_unit:temperature")
    reasons += [f"out_of_range:{m.name}" for m in VITAL_SIGNS if _outside(values[m.name], m.hard_min, m.hard_max)]
    present = sum(value is not None for value in values.values())
    if present == 0:
        reasons.append("no_measurements")
    systolic, diastolic, heart_rate = values["systolic_bp"], values["diastolic_bp"], values["heart_rate"]
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        reasons.append("diastolic_not_below_systolic")
    if reasons:
        return {}
    pulse = systolic - diastolic if systolic is not None and diastolic is not None else None
    converted = unit in temperature.conversions and not unlabelled
    factor = UNIT_INFERRED_FACTOR if unlabelled else UNIT_CONVERTED_FACTOR if converted else 1.0
    return {
        **values,
        "pulse_pressure": pulse,
        "mean_arterial_pressure": diastolic + pulse / 3 if diastolic is not None and pulse is not None else None,
        "shock_index": heart_rate / systolic if heart_rate is not None and systolic is not None else None,
        "quality_score": present / len(VITAL_SIGNS) * factor,
        "unit_converted": converted,
        "unit_inferred": unlabelled,
    }


def _labs(record: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    test, unit = _text(record, "test"), _text(record, "unit")
    if not test:
        reasons.append("missing_field:test")
    elif test not in LABS_BY_NAME:
        reasons.append("unknown_test")
    value, not_numeric = _number(record, "value")
    if not_numeric:
        reasons.append("not_numeric:value")
    if record.get("value") is None:
        reasons.append("missing_field:value")
    if not unit:
        reasons.append("missing_field:unit")
    m = LABS_BY_NAME.get(test or "")
    canonical = value
    if m is not None:
        if unit and unit != m.unit and unit not in m.conversions:
            reasons.append(f"unknown_unit:{m.name}")
        canonical = _convert(value, unit, m.conversions)
        if _outside(canonical, m.hard_min, m.hard_max):
            reasons.append("out_of_range:value")
    if reasons or m is None:
        return {}
    converted = unit in m.conversions
    return {
        "test": test,
        "value": canonical,
        "unit": m.unit,
        "quality_score": UNIT_CONVERTED_FACTOR if converted else 1.0,
        "unit_converted": converted,
        "unit_inferred": False,
    }


def _medications(record: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    drug_class, dose_unit, route = _text(record, "drug_class"), _text(record, "dose_unit"), _text(record, "route")
    spec = MEDICATIONS.get(drug_class or "")
    if not drug_class:
        reasons.append("missing_field:drug_class")
    elif spec is None:
        reasons.append("unknown_drug_class")
    dose, not_numeric = _number(record, "dose")
    if not_numeric:
        reasons.append("not_numeric:dose")
    if record.get("dose") is None:
        reasons.append("missing_field:dose")
    expected = spec[1] if spec else None
    factor = next((f for (src, dst), f in DOSE_UNIT_CONVERSIONS.items() if dose_unit == src and expected == dst), None)
    canonical = dose * factor if dose is not None and factor is not None else dose
    if spec is not None and dose_unit != expected and factor is None:
        reasons.append("unknown_unit:dose")
    if spec is not None and canonical is not None and (canonical <= 0 or canonical > spec[3]):
        reasons.append("out_of_range:dose")
    if route and route not in MEDICATION_ROUTES:
        reasons.append("unknown_route")
    if reasons:
        return {}
    quality = (1.0 if route else 0.8) * (UNIT_CONVERTED_FACTOR if factor is not None else 1.0)
    return {
        "drug_class": drug_class,
        "drug": _text(record, "drug"),
        "dose": canonical,
        "dose_unit": expected,
        "route": route,
        "quality_score": quality,
        "unit_converted": factor is not None,
        "unit_inferred": False,
    }


def _adverse_events(record: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    kind = _text(record, "kind")
    if not kind:
        reasons.append("missing_field:kind")
    elif kind not in ADVERSE_EVENT_KINDS:
        reasons.append("unknown_kind")
    grade, not_numeric = _number(record, "grade")
    if not_numeric:
        reasons.append("not_numeric:grade")
    if record.get("grade") is None:
        reasons.append("missing_field:grade")
    low, high = ADVERSE_GRADE_RANGE
    if grade is not None and not (low <= grade <= high and grade == round(grade)):
        reasons.append("out_of_range:grade")
    if reasons:
        return {}
    return {
        "kind": kind,
        "grade": int(grade) if grade is not None else None,
        "quality_score": 1.0,
        "unit_converted": False,
        "unit_inferred": False,
    }


TYPED = {
    EventType.VITALS: _vitals,
    EventType.LAB_RESULT: _labs,
    EventType.MEDICATION: _medications,
    EventType.ADVERSE_EVENT: _adverse_events,
}


def row_fields(kind: EventType) -> list[str]:
    """The peer UDF's row: silver's columns but the timestamp (as epoch ms), validity, reasons and dedupe keys."""
    silver = [f.name for f in silver_schema(kind) if f.name != "timestamp"]
    return [*silver, "ts_ms", "valid", "reasons", "dedupe_key", "replay_key"]


def validate_record(kind: EventType, line: str) -> tuple[Any, ...]:
    """One bronze line → the peer UDF's row (``row_fields``)."""
    record = orjson.loads(line)
    reasons: list[str] = []
    text = {name: _text(record, name) for name in ENVELOPE_FIELDS}
    reasons += [f"missing_field:{name}" for name in ENVELOPE_FIELDS if name != "event_type" and not text[name]]
    if text["event_type"] and text["event_type"] != kind.value:
        reasons.append("wrong_event_type")
    stamp = _timestamp_ms(text["timestamp"]) if text["timestamp"] else None
    if text["timestamp"] and stamp is None:
        reasons.append("invalid_timestamp")
    typed = TYPED[kind](record, reasons)
    values = {**{name: text.get(name) for name in ("event_id", "patient_id", "encounter_id", "source")}, **typed}
    discriminator = DEDUPE_DISCRIMINATOR[kind]
    key = [text["patient_id"], str(stamp), text["source"], *([values.get(discriminator)] if discriminator else [])]
    values.update(ts_ms=stamp, valid=not reasons, reasons=reasons, replay_key=text["event_id"])
    values["dedupe_key"] = "\x1f".join(str(part) for part in key)
    return tuple(values.get(name) for name in row_fields(kind))


# --- the peer job (stream env) -------------------------------------------------------------------------------


def run_peer_job(lake_root: str, parallelism: int) -> dict[str, Any]:
    from pyflink.common import Row
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    from clinops.streaming.flink.silver_job import RunOptions, jar_cache, lake_uri, table_environment
    from clinops.streaming.flink.silver_sql import (
        DEDUPE_WINDOW,
        MAX_RANK,
        NEVER_MS,
        JobSpec,
        entity,
        literal,
        origin_columns,
        origin_json,
        quarantine_sink_ddl,
        quote,
        silver_sink_ddl,
    )

    flink_types = {"string": DataTypes.STRING(), "double": DataTypes.DOUBLE(), "int8": DataTypes.TINYINT()}
    flink_types.update({"bool": DataTypes.BOOLEAN(), "timestamp[ms, tz=UTC]": DataTypes.BIGINT()})
    lake = Lake(lake_root)
    spec = JobSpec(lake_uri=lake_uri(lake))
    # The settings a bounded run of ours gets (run() sets bounded_jvm for a file backfill): checkpoints, state
    # backend, parallelism and the local JVM's JIT options come from the same table_environment for both jobs.
    options = RunOptions(lake=lake_root, parallelism=parallelism, bounded_jvm=True)
    t_env = table_environment(options, jar_cache())
    inserts = []
    for kind in EventType:
        name = entity(kind)
        types = {f.name: flink_types[str(f.type)] for f in silver_schema(kind)}
        types.update(
            ts_ms=DataTypes.BIGINT(),
            valid=DataTypes.BOOLEAN(),
            reasons=DataTypes.ARRAY(DataTypes.STRING()),
            dedupe_key=DataTypes.STRING(),
            replay_key=DataTypes.STRING(),
        )
        fields = [DataTypes.FIELD(field, types[field]) for field in row_fields(kind)]

        def per_event(line: str, kind: EventType = kind) -> Row:
            return Row(*validate_record(kind, line))

        t_env.create_temporary_function(f"peer_{name}", udf(per_event, result_type=DataTypes.ROW(fields)))
        t_env.execute_sql(
            f"CREATE TABLE {quote('bronze_' + name)} (`line` STRING, "
            "`path` STRING NOT NULL METADATA FROM 'file.path' VIRTUAL, "
            "`file_name` STRING NOT NULL METADATA FROM 'file.name' VIRTUAL, `event_time` AS TO_TIMESTAMP_LTZ(0, 3), "
            f"WATERMARK FOR `event_time` AS TO_TIMESTAMP_LTZ({NEVER_MS}, 3)) WITH ('connector' = 'filesystem', "
            f"'path' = {literal(spec.lake_uri + '/' + bronze_prefix(TOPIC_BY_EVENT_TYPE[kind]).rstrip('/'))}, "
            "'source.path.regex-pattern' = '.*\\.jsonl', 'format' = 'raw')"
        )
        t_env.execute_sql(silver_sink_ddl(kind, spec))
        t_env.execute_sql(quarantine_sink_ddl(kind, spec))

        def view(suffix: str, query: str, name: str = name) -> str:
            t_env.create_temporary_view(f"{name}_{suffix}", t_env.sql_query(query))
            return quote(f"{name}_{suffix}")

        numbered = view(
            "numbered",
            f"SELECT *, COUNT(*) OVER (PARTITION BY `file_name` ORDER BY `read_at` ROWS BETWEEN UNBOUNDED PRECEDING "
            f"AND CURRENT ROW) AS `line_count` FROM (SELECT *, PROCTIME() AS `read_at` FROM {quote('bronze_' + name)})",
        )
        validated = view(
            "validated",
            f"SELECT {', '.join(f'`v`.{quote(field)} AS {quote(field)}' for field in row_fields(kind))}, "
            f"`line`, `event_time`, "
            f"{', '.join(origin_columns(kind, spec))} FROM (SELECT peer_{name}(`line`) AS `v`, * FROM {numbered})",
        )
        windowed = view(
            "windowed", f"SELECT * FROM TABLE(TUMBLE(TABLE {validated}, DESCRIPTOR(`event_time`), {DEDUPE_WINDOW}))"
        )
        first = view(
            "first_arrivals",
            f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY `window_start`, `window_end`, `replay_key` "
            f"ORDER BY `arrival_partition`, `arrival_position`) AS `replay_rank` FROM {windowed}) "
            "WHERE `replay_rank` = 1",
        )
        ranked = view(
            "ranked",
            f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY `window_start`, `window_end`, `dedupe_key` "
            f"ORDER BY `arrival_partition`, `arrival_position`) AS `duplicate_rank` FROM {first} WHERE `valid`) "
            f"WHERE `duplicate_rank` <= {MAX_RANK}",
        )
        origin = origin_json(spec)
        entry = f"JSON_OBJECT(KEY 'reasons' VALUE {{}}, KEY 'origin' VALUE {origin}, KEY 'record' VALUE JSON(`line`))"
        columns = ", ".join(
            "TO_TIMESTAMP_LTZ(`ts_ms`, 3)" if f.name == "timestamp" else quote(f.name) for f in silver_schema(kind)
        )
        inserts.append(
            f"INSERT INTO {quote('silver_' + name)} SELECT {columns}, DATE_FORMAT(TO_TIMESTAMP_LTZ(`ts_ms`, 3), "
            f"'yyyy-MM-dd') FROM {ranked} WHERE `duplicate_rank` = 1"
        )
        inserts.append(
            f"INSERT INTO {quote('quarantine_' + name)} "
            f"SELECT {entry.format('`reasons`')}, `origin_date` FROM {windowed} WHERE NOT `valid` UNION ALL "
            f"SELECT {entry.format('JSON_ARRAY(' + literal('duplicate') + ')')}, `origin_date` FROM {ranked} "
            "WHERE `duplicate_rank` > 1"
        )
    statement_set = t_env.create_statement_set()
    for insert in inserts:
        statement_set.add_insert_sql(insert)
    started = time.perf_counter()
    result = statement_set.execute()
    result.wait()
    client = result.get_job_client()
    runtime_s = client.get_job_execution_result().result().get_net_runtime() / 1000
    return {"seconds": round(time.perf_counter() - started, 2), "runtime_s": round(runtime_s, 2)}


# --- the benchmark (core env) --------------------------------------------------------------------------------


def _run(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:3])} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    summary["wall_s"] = time.perf_counter() - started
    return summary


def outputs(lake: Lake) -> tuple[dict[str, set[str]], Counter[tuple[str, str, tuple[str, ...]]]]:
    """Silver event ids per entity, and quarantined (entity, event id, reasons)."""
    silver: dict[str, set[str]] = {}
    quarantined: Counter[tuple[str, str, tuple[str, ...]]] = Counter()
    for kind, name in ENTITY_BY_EVENT_TYPE.items():
        table = lake.read_parquet(silver_prefix(name), columns=["event_id"], schema=silver_schema(kind))
        silver[name] = set(table.column("event_id").to_pylist())
        for key in lake.keys(f"quarantine/{name}/"):
            for line in lake.read_bytes(key).splitlines():
                entry = orjson.loads(line)
                quarantined[(name, str(entry["record"].get("event_id")), tuple(entry["reasons"]))] += 1
    return silver, quarantined


def ingested_lake(cohort: Any, lake: Lake, partitions: int = 3, batch: int = INGEST_BATCH) -> int:
    """Bronze as the ingestor leaves a replayed backlog: per partition (by patient key), batches of ``batch``
    records, all arriving within one hour. (The embedded emitter cuts objects by simulated hour instead: thousands
    of small files, whose opening would dominate both jobs' time.)"""
    from clinops.data.emit import transport_stream

    stream = transport_stream(cohort)
    writer = BronzeWriter(lake)
    arrived_ms = BASE_ARRIVAL_MS
    pending: dict[tuple[str, int], list[TransportRecord]] = {}
    for topic, key, value in zip(stream.topics.tolist(), stream.keys.tolist(), stream.values, strict=True):
        partition = zlib.crc32(key.encode()) % partitions
        records = pending.setdefault((topic, partition), [])
        records.append(TransportRecord(len(records), arrived_ms, value))
    for (topic, partition), records in pending.items():
        for start in range(0, len(records), batch):
            writer.write(topic, partition, records[start : start + batch])
    return len(stream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2400)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="Runs of each job; the fastest counts.")
    parser.add_argument("--peer-job", metavar="LAKE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_job:
        print(json.dumps(run_peer_job(args.peer_job, args.parallelism)))
        return

    from clinops.data.generator import GeneratorConfig, generate
    from clinops.streaming.flink_launcher import job_command, job_environment, stream_python

    python = stream_python()
    with tempfile.TemporaryDirectory() as root:
        source = Path(root) / "source"
        events = ingested_lake(generate(GeneratorConfig(patients=args.patients, seed=3, days=args.days)), Lake(source))
        env = {**job_environment(python), "FLINK_LOG_DIR": str(Path(root) / "log")}
        settings = ["--parallelism", str(args.parallelism)]
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
        lakes: dict[str, Lake] = {}
        for repeat in range(args.repeats):
            # Interleaved, so a slow spell of a shared machine hits both sides alike.
            for side in ("ours", "peer"):
                target = Path(root) / f"{side}-{repeat}"
                shutil.copytree(source, target)
                if side == "ours":
                    command = job_command(python, "bronze-to-silver", ["--lake", str(target), *settings])
                else:
                    command = [str(python), __file__, "--peer-job", str(target), *settings]
                runs[side].append(_run(command, env))
                lakes[side] = Lake(target)
        ours_out, peer_out = outputs(lakes["ours"]), outputs(lakes["peer"])
    best = {side: min(runs[side], key=lambda run: run["runtime_s"]) for side in runs}
    print(
        json.dumps(
            {
                "benchmark": "flink_bronze_to_silver",
                "events": events,
                "parallelism": args.parallelism,
                "ours_sql_events_per_s": round(events / best["ours"]["runtime_s"]),
                "peer_python_udf_events_per_s": round(events / best["peer"]["runtime_s"]),
                "ratio_ours_over_peer": round(best["peer"]["runtime_s"] / best["ours"]["runtime_s"], 2),
                "ours_end_to_end_s": round(best["ours"]["wall_s"], 1),
                "peer_end_to_end_s": round(best["peer"]["wall_s"], 1),
                "same_silver": ours_out[0] == peer_out[0],
                "same_quarantine": ours_out[1] == peer_out[1],
                "silver_events": sum(len(ids) for ids in ours_out[0].values()),
                "quarantined": sum(ours_out[1].values()),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
