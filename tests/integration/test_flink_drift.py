"""The Flink drift job (stream env, local mini-cluster) emits per window the batch path's drift record."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer
from mlflow import MlflowClient

from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.layout import drift_prefix
from clinops.lake.store import Lake
from clinops.monitoring.bins import bin_index_rules, window_counts
from clinops.monitoring.drift import drift_report
from clinops.monitoring.profile import reference_profile
from clinops.specs.training_job import Algorithm
from clinops.stack.kafka import KafkaBroker
from clinops.stack.process import ManagedProcess, free_port, poll_until
from clinops.streaming.flink.cache import FUNCTIONS_JAR, JARS_ENV
from clinops.streaming.flink.drift_sql import (
    category_bins,
    cell_offsets,
    counts_from_cells,
    encode_rules,
    window_bounds,
)
from clinops.streaming.flink_launcher import java_home, job_command, job_environment, stream_python
from clinops.training.steps import PROFILE_ARTIFACT, fit_pipeline, log_registered_model
from tests.integration.kafka_helpers import consume, group_at_end

pytestmark = pytest.mark.integration

JOB_TIMEOUT_S = 600
RESULTS_TIMEOUT_S = 300
WINDOW_S = 600
BASE_S = 1_767_312_000  # 2026-01-02T00:00:00Z, a window boundary
# Text the JVM must compare exactly as pandas does: non-ASCII, a character beyond the BMP, a quote.
BANDS = ["18-40", "40-65", "65+ é", "🫀 o'clock"]
NUMERIC = ["heart_rate", "lactate", "age"]


def reference(rng: np.random.Generator, n: int = 6000) -> pd.DataFrame:
    """Training inputs plus a subgroup column ("ward") the model never sees, as training profiles them."""
    return pd.DataFrame(
        {
            "heart_rate": rng.normal(80, 10, n),
            "lactate": rng.lognormal(0.3, 0.6, n),
            "age": rng.integers(18, 95, n).astype(float),
            "band": rng.choice(BANDS, n),
            "flag": rng.choice([True, False], n),
            "ward": rng.choice(["icu", "general"], n),
        }
    )


def feature_rows(rng: np.random.Generator, n: int, shift: float) -> list[dict[str, Any]]:
    """What the server logs: numbers, null for a missing value, a key left out, unseen and missing categories."""
    heart_rate = rng.normal(80 + 10 * shift, 10, n)
    lactate = rng.lognormal(0.3 + shift, 0.6, n)
    age = rng.integers(18, 95, n).astype(float)
    tilt = min(shift, 1.0) / 5
    band = rng.choice([*BANDS, "90+"], n, p=[0.3 - tilt, 0.3, 0.2, 0.15 + tilt, 0.05])
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "heart_rate": None if rng.random() < 0.03 else float(heart_rate[i]),
            "lactate": float(lactate[i]),
            "age": float(age[i]),
            "band": None if rng.random() < 0.02 else str(band[i]),
            "flag": bool(rng.random() < 0.5 + tilt),
        }
        if rng.random() < 0.02:
            del row["lactate"]
        rows.append(row)
    return rows


def prediction_log(
    rng: np.random.Generator, sizes: list[int], shifts: list[float], *, version: str = "1", model: str = "risk"
) -> list[dict[str, Any]]:
    """Prediction-log records, window ``i`` holding ``sizes[i]`` rows drifted by ``shifts[i]``."""
    records = []
    for window, (size, shift) in enumerate(zip(sizes, shifts, strict=True)):
        for i, features in enumerate(feature_rows(rng, size, shift)):
            records.append(
                {
                    "request_id": f"r-{version}-{window}-{i}",
                    "row": 0,
                    "timestamp_ms": (BASE_S + window * WINDOW_S) * 1000 + int(rng.integers(0, WINDOW_S * 1000)),
                    "model": model,
                    "model_version": version,
                    "variant": "primary",
                    "key": f"p{i % 50}",
                    "features": features,
                    "score": float(rng.random()),
                }
            )
    return records


def write_bronze(lake: Lake, records: list[dict[str, Any]], partitions: int = 2) -> None:
    """Bronze objects as the server's lake sink writes them, each writer's records in the order it logged them."""
    writer = BronzeWriter(lake)
    for partition in range(partitions):
        mine = sorted(records[partition::partitions], key=lambda r: r["timestamp_ms"])
        batch = [TransportRecord(i, r["timestamp_ms"], orjson.dumps(r)) for i, r in enumerate(mine)]
        writer.write("predictions", 1000 + partition, batch)


def batch_records(
    records: list[dict[str, Any]], profile: dict[str, Any], deployment: str, **options: Any
) -> dict[str, dict[str, Any]]:
    """The batch path per window: window_counts of the window's rows, then drift_report with the same options."""
    by_window: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        start_s = record["timestamp_ms"] // 1000 // WINDOW_S * WINDOW_S
        by_window.setdefault(start_s, []).append(record["features"])
    expected = {}
    for start_s, rows in sorted(by_window.items()):
        frame = pd.DataFrame(rows)
        start, end = window_bounds(start_s, WINDOW_S)
        result = drift_report(window_counts(frame, profile), profile, window_start=start, window_end=end, **options)
        expected[start] = {"deployment": deployment, **result.to_record()}
    return expected


def assert_same(got: Any, want: Any, path: str = "record") -> None:
    """Equal records, floats within 1e-9 relative (the two envs run different numpy and scipy builds)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        assert got.keys() == want.keys(), path
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list), path
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), (path, got)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (path, got, want)
    else:
        assert got == want, (path, got, want)


def profile_file(tmp_path: Path, profile: dict[str, Any]) -> Path:
    path = tmp_path / "reference_profile.json"
    path.write_text(json.dumps(profile))
    return path


def run_job(tmp_path: Path, args: list[str]) -> None:
    python = stream_python()
    env = {**job_environment(python), "FLINK_LOG_DIR": str(tmp_path / "flink-log")}
    done = subprocess.run(
        job_command(python, "drift", args), env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    assert done.returncode == 0, f"{done.stderr[-4000:]}\n(JVM log in {tmp_path / 'flink-log'})"


def lake_results(lake: Lake, deployment: str) -> dict[str, dict[str, Any]]:
    records = [
        orjson.loads(line) for key in lake.keys(drift_prefix(deployment)) for line in lake.read_bytes(key).splitlines()
    ]
    return {record["window_start"]: record for record in records}


def java_cells(rules: dict[str, Any], events: list[list[Any]]) -> list[list[int]]:
    """Each event's cells by the job's Java bin rule (io.clinops.flink.BinRules) on Flink's own row, in one JVM."""
    python = stream_python()
    jars = Path(job_environment(python)[JARS_ENV]) / "jars"
    flink_lib = subprocess.run(
        [str(python), "-c", "import pathlib, pyflink; print(pathlib.Path(pyflink.__file__).parent / 'lib')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    def text(value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, float):
            return "d:" + struct.pack(">d", value).hex()
        return "s:" + base64.b64encode(str(value).encode()).decode()

    lines = [encode_rules(rules), *(" ".join(map(text, event)) for event in events)]
    java = str(Path(java_home()) / "bin" / "java")
    done = subprocess.run(
        [java, "-cp", f"{jars / FUNCTIONS_JAR}:{flink_lib}/*", "io.clinops.flink.BinRules"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [[int(cell) for cell in line.split()] for line in done.stdout.splitlines()]


def test_java_bins_are_the_profiles_bin_rule() -> None:
    """Every value the bin rule has to settle, binned in the JVM, lands where numpy's batch counts put it."""
    rng = np.random.default_rng(3)
    train = reference(rng)
    # Cut midway between -2 and 2: an edge at 0.0, which -0.0 equals (numpy) though Java's search orders it first.
    train["signed"] = rng.choice([-2.0, 2.0, 5.0], len(train))
    features = [c for c in train.columns if c != "ward"]
    profile = reference_profile(train[features])
    rules = bin_index_rules(profile)
    assert 0.0 in rules["signed"]["edges"]
    columns: dict[str, list[Any]] = {}
    specials = [math.nan, math.inf, -math.inf, 1.7976931348623157e308, -5e-324, 5e-324, -0.0, 0.0, None]
    for name, rule in rules.items():
        if rule["kind"] == "numeric":
            edges = np.array(rule["edges"])
            near = [*edges, *np.nextafter(edges, -np.inf), *np.nextafter(edges, np.inf)]
            columns[name] = [float(v) for v in [*rng.choice(train[name].to_numpy(), 300), *near]] + specials
        elif name == "flag":
            columns[name] = [True, False, None]  # as JSON true / false, where the profile has True / False
        else:
            columns[name] = [*rule["categories"], "true", "False", "", "90+", "65+ e", "🫀", "'", None]
    size = max(len(column) for column in columns.values())
    # Last, an event with every feature null, numbers too.
    frame = pd.DataFrame({name: pd.array([*(c * size)[:size], None], dtype=object) for name, c in columns.items()})
    for name, rule in rules.items():
        if rule["kind"] == "numeric":
            frame[name] = frame[name].astype(float)
    events = [
        [("true" if v else "false") if isinstance(v, bool) else v for v in row]
        for row in frame.astype(object).itertuples(index=False)
    ]
    events[-1] = [None] * len(rules)
    cells = java_cells(rules, events)
    offsets = cell_offsets(rules)
    for event, row in zip(events, cells, strict=True):
        for (name, rule), value, cell in zip(rules.items(), event, row, strict=True):
            if rule["kind"] == "numeric":
                finite = value is not None and math.isfinite(value)
                expected = int(np.searchsorted(rule["edges"], value, side="right")) if finite else rule["missing"]
            else:
                expected = rule["missing"] if value is None else category_bins(rule).get(value, rule["other"])
            assert cell == offsets[name] + expected, (name, value)
    total = sum(rule["size"] for rule in rules.values())
    got = counts_from_cells(np.bincount(np.ravel(cells), minlength=total).tolist(), rules)
    expected_counts = window_counts(frame, profile)
    for name in rules:
        np.testing.assert_array_equal(got[name], expected_counts[name], err_msg=name)


def test_the_job_names_the_missing_functions_jar(tmp_path: Path) -> None:
    """Without our jar the job stops before Flink starts, saying how to build it (Flink would name only a class)."""
    python = stream_python()
    env = job_environment(python)
    jars = tmp_path / "flink" / "jars"
    jars.mkdir(parents=True)
    for jar in (Path(env[JARS_ENV]) / "jars").glob("*.jar"):
        if jar.name != FUNCTIONS_JAR:
            (jars / jar.name).symlink_to(jar)
    rng = np.random.default_rng(1)
    lake = Lake(tmp_path / "lake")
    write_bronze(lake, prediction_log(rng, [10], [0.0]))
    profile = reference_profile(reference(rng, 200)[NUMERIC])
    args = ["--profile", str(profile_file(tmp_path, profile)), "--deployment", "risk", "--lake", str(lake.root)]
    done = subprocess.run(
        job_command(python, "drift", args),
        env={**env, JARS_ENV: str(tmp_path / "flink"), "FLINK_LOG_DIR": str(tmp_path / "flink-log")},
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1
    assert f"no {FUNCTIONS_JAR}" in done.stderr
    assert "run `make flink-jars`" in done.stderr


def test_lake_windows_equal_the_batch_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    train = reference(rng)
    features = [c for c in train.columns if c != "ward"]
    profile = reference_profile(train[features])
    # Window 1 drifts; another version's predictions share the log and must not count.
    records = prediction_log(rng, [1800, 2200, 1500], [0.0, 0.8, 0.0])
    other = prediction_log(rng, [300, 300, 300], [2.0, 2.0, 2.0], version="2")
    lake = Lake(tmp_path / "lake")
    write_bronze(lake, records + other)
    args = ["--profile", str(profile_file(tmp_path, reference_profile(train))), "--deployment", "risk"]
    args += ["--lake", str(lake.root), "--features", ",".join(features), "--model-version", "1"]
    args += ["--window-seconds", str(WINDOW_S), "--threshold", "0.01", "--drift-share", "0.4"]
    args += ["--checkpoint-interval", "1"]

    run_job(tmp_path, args)

    got = lake_results(lake, "risk")
    expected = batch_records(records, profile, "risk", threshold=0.01, drift_share=0.4)
    assert sorted(got) == sorted(expected)
    for start, record in expected.items():
        assert_same(got[start], record, start)
    drifted = [got[start]["drifted"] for start in sorted(got)]
    assert drifted == [False, True, False]
    assert {"heart_rate", "lactate", "band"} <= set(got[sorted(got)[1]]["drifted_features"])
    assert set(got[sorted(got)[0]]["features"]) == set(features)  # the subgroup column is not monitored


def scrape(port: int) -> dict[tuple[str, str | None], float]:
    """The drift gauges on the job's Prometheus endpoint, by (metric, feature label)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        match = re.match(r"flink_taskmanager_job_task_operator_drift_(\w+)\{(.*)\} (\S+)$", line)
        if match:
            feature = re.search(r'feature="([^"]*)"', match[2])
            values[match[1], feature[1] if feature else None] = float(match[3])
    return values


def test_kafka_windows_fire_on_the_watermark_and_gauges_follow(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    train = reference(rng)
    features = [c for c in train.columns if c != "ward"]
    profile = reference_profile(train[features])
    records = prediction_log(rng, [1200, 1500, 1000], [0.0, 0.0, 0.8])
    suffix = uuid.uuid4().hex[:8]
    topic, results = f"predictions-{suffix}", f"drift-results-{suffix}"
    kafka_broker.create_topics([topic], partitions=2)
    kafka_broker.create_topics([results], partitions=1)
    group = group_at_end(kafka_broker.bootstrap, f"drift-results-{suffix}", (results,))
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    # Each partition in time order, as one server's log is; a last record per partition, a window later than the
    # lateness, moves the watermark past the third window.
    late = (BASE_S + 3 * WINDOW_S + 60) * 1000
    sentinel = {**records[0], "request_id": "sentinel", "timestamp_ms": late}
    for partition in range(2):
        for record in [*sorted(records[partition::2], key=lambda r: r["timestamp_ms"]), sentinel]:
            # No record timestamp: the broker would expire days-old log segments at once; event time is in the value.
            producer.produce(topic, orjson.dumps(record), partition=partition)
            producer.poll(0)
    assert producer.flush(60) == 0

    port = free_port()
    args = ["--profile", str(profile_file(tmp_path, profile)), "--deployment", "risk-kafka"]
    args += ["--source", "kafka", "--bootstrap", kafka_broker.bootstrap, "--topic", topic, "--results-topic", results]
    args += ["--window-seconds", str(WINDOW_S), "--lateness", "30", "--numerical-test", "wasserstein"]
    args += ["--categorical-test", "psi", "--metrics-port", str(port), "--checkpoint-interval", "1"]
    python = stream_python()
    env = {**job_environment(python), "FLINK_LOG_DIR": str(tmp_path / "flink-log")}
    job = ManagedProcess("drift job", job_command(python, "drift", args), tmp_path / "job.log", env=env)
    job.start()
    try:
        messages = consume(kafka_broker.bootstrap, group, (results,), count=3, timeout=RESULTS_TIMEOUT_S)
        assert len(messages) == 3, (job.running, job.log.read_text()[-3000:])
        assert {m.key() for m in messages} == {b"risk-kafka"}
        got = {r["window_start"]: r for r in (orjson.loads(m.value()) for m in messages)}
        expected = batch_records(records, profile, "risk-kafka", numerical_test="wasserstein", categorical_test="psi")
        assert sorted(got) == sorted(expected)
        for start, record in expected.items():
            assert_same(got[start], record, start)
        last = got[max(got)]
        assert last["drifted"]

        def gauges_show_three_windows() -> bool:
            return scrape(port).get(("windows", None)) == 3

        assert poll_until(gauges_show_three_windows, timeout=60), scrape(port)
        gauges = scrape(port)
        assert gauges["rows", None] == last["rows"]
        assert gauges["drifted", None] == 1
        assert gauges["share_ppm", None] == round(last["drift_share"] * 1_000_000)
        assert gauges["drifted_features", None] == len(last["drifted_features"])
        for name, feature in last["features"].items():
            assert gauges["feature_drifted", name] == int(feature["drifted"])
            assert gauges["feature_statistic_ppm", name] == round(feature["statistic"] * 1_000_000)
    finally:
        job.stop()


def test_launcher_monitors_a_registered_model(mlflow_server: str, tmp_path: Path) -> None:
    """`clinops flink run drift --model models:/…@alias`: the version's profile, over its inputs, its predictions."""
    rng = np.random.default_rng(13)
    train = reference(rng, 3000)
    inputs = ["heart_rate", "lactate", "age"]
    target = (train["lactate"] > 1.5).astype(int)
    name = f"drift-launch-{uuid.uuid4().hex[:6]}"
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("clinops/drift-tests")
    with mlflow.start_run() as run:
        pipeline = fit_pipeline(Algorithm.LOGISTIC_REGRESSION, {"C": 1.0}, train[inputs], target, seed=3)
        # As training logs it: the inputs plus the subgroup columns.
        mlflow.log_dict(reference_profile(train[[*inputs, "band", "ward"]]), PROFILE_ARTIFACT)
        version = log_registered_model(pipeline, train[inputs], name, Algorithm.LOGISTIC_REGRESSION)
    client = MlflowClient(mlflow_server)
    client.set_model_version_tag(
        name, version, "clinops.reference_profile", f"runs:/{run.info.run_id}/{PROFILE_ARTIFACT}"
    )
    client.set_registered_model_alias(name, "champion", version)
    records = prediction_log(rng, [800, 900], [0.0, 1.0], version=version, model=name)
    for record in records:
        record["features"] = {k: v for k, v in record["features"].items() if k in inputs}
    stale = prediction_log(rng, [200, 200], [0.0, 0.0], version="999", model=name)
    lake = Lake(tmp_path / "lake")
    write_bronze(lake, records + stale)
    env = {**job_environment(stream_python()), "MLFLOW_TRACKING_URI": mlflow_server, "CLINOPS_HOME": str(tmp_path)}
    env["FLINK_LOG_DIR"] = str(tmp_path / "flink-log")
    clinops = Path(sys.executable).with_name("clinops")
    command = [str(clinops), "flink", "run", "drift", "--model", f"models:/{name}@champion", "--lake", str(lake.root)]
    command += ["--window-seconds", str(WINDOW_S), "--checkpoint-interval", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]

    got = lake_results(lake, name)
    profile = reference_profile(train[inputs])
    expected = batch_records(records, profile, name)
    assert sorted(got) == sorted(expected)
    for start, record in expected.items():
        assert_same(got[start], record, start)
    assert [got[start]["drifted"] for start in sorted(got)] == [False, True]
