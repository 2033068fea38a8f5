"""Streaming drift on Flink (parallelism 2): bins by a Java aggregate in the JVM, against per-event Python bins.

Both runs are the drift job on a local mini-cluster in the stream env, over the same prediction log in a lake
(file source, bounded) and the same reference profile: per-window drift of every feature, one record per window.
They differ in the per-event work only: every event's bins by a binary search over the profile's edges inside the
Java aggregate that counts them (ours), or by a row-at-a-time Python scalar UDF whose cells the Java aggregate then
counts (the peer, ``--binning python``); counting per window and the once-per-window Python report are the same.
Both must emit the same records. Throughput is predictions over the job's net runtime on the cluster (JVM start-up
and planning excluded; both are also printed end to end). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from clinops.lake.bronze import BronzeWriter, TransportRecord
from clinops.lake.layout import drift_prefix
from clinops.lake.store import Lake
from clinops.monitoring.profile import reference_profile
from clinops.streaming.flink_launcher import job_command, job_environment, stream_python

JOB_TIMEOUT_S = 3600
WINDOW_S = 600
BASE_S = 1_767_312_000  # 2026-01-02T00:00:00Z
OBJECT_RECORDS = 50_000
CATEGORIES = ["a", "b", "c", "d", "e"]


def features(rng: np.random.Generator, n: int, numeric: int, categorical: int, shift: float) -> pd.DataFrame:
    """Numeric features of assorted shapes (rounded as vitals and labs arrive) and a few categorical ones."""
    columns: dict[str, Any] = {}
    for i in range(numeric):
        if i % 3 == 0:
            values = rng.normal(50 + i + shift, 10, n)
        elif i % 3 == 1:
            values = rng.lognormal(1 + shift / 10, 0.5, n)
        else:
            values = rng.integers(0, 100, n).astype(float) + shift
        columns[f"x{i:02d}"] = np.round(values, 3)
    for i in range(categorical):
        weights = np.array([0.3, 0.25, 0.2, 0.15, 0.1]) + np.array([-1, 0, 0, 0, 1]) * min(shift, 1) / 20
        columns[f"c{i}"] = rng.choice(CATEGORIES, n, p=weights / weights.sum())
    return pd.DataFrame(columns)


def write_log(lake: Lake, rng: np.random.Generator, args: argparse.Namespace) -> int:
    """The prediction log as bronze objects, windows in turn, every other one drifted; a few values missing."""
    writer = BronzeWriter(lake)
    per_window = args.predictions // args.windows
    offset = 0
    for window in range(args.windows):
        frame = features(rng, per_window, args.numeric, args.categorical, shift=2.0 * (window % 2))
        times = (BASE_S + window * WINDOW_S) * 1000 + np.sort(rng.integers(0, WINDOW_S * 1000, per_window))
        missing = rng.random(per_window) < 0.02
        names = list(frame.columns)
        rows = frame.to_numpy(dtype=object)
        for start in range(0, per_window, OBJECT_RECORDS):
            batch = []
            for i in range(start, min(start + OBJECT_RECORDS, per_window)):
                values = dict(zip(names, rows[i].tolist(), strict=True))
                if missing[i]:
                    values[names[0]] = None
                record = {
                    "request_id": f"r{offset + i}",
                    "row": 0,
                    "timestamp_ms": int(times[i]),
                    "model": "bench",
                    "model_version": "1",
                    "variant": "primary",
                    "key": f"p{i % 1000}",
                    "features": values,
                    "score": 0.5,
                }
                batch.append(TransportRecord(offset + i, int(times[i]), orjson.dumps(record)))
            writer.write("predictions", 0, batch)
        offset += per_window
    return offset


def run(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise SystemExit(f"job failed ({done.returncode}):\n{done.stderr[-4000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**summary, "wall_s": time.perf_counter() - started}


def records(lake: Lake) -> list[dict[str, Any]]:
    keys = lake.keys(drift_prefix("bench"))
    found = [orjson.loads(line) for key in keys for line in lake.read_bytes(key).splitlines()]
    return sorted(found, key=lambda record: record["window_start"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--numeric", type=int, default=28)
    parser.add_argument("--categorical", type=int, default=2)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="Runs of each job; the fastest counts.")
    args = parser.parse_args()

    rng = np.random.default_rng(17)
    python = stream_python()
    with tempfile.TemporaryDirectory() as root:
        source = Path(root) / "source"
        profile = reference_profile(features(rng, 100_000, args.numeric, args.categorical, shift=0.0))
        profile_path = Path(root) / "reference_profile.json"
        profile_path.write_text(json.dumps(profile))
        predictions = write_log(Lake(source), rng, args)
        env = {**job_environment(python), "FLINK_LOG_DIR": str(Path(root) / "log")}
        settings = ["--profile", str(profile_path), "--deployment", "bench", "--window-seconds", str(WINDOW_S)]
        settings += ["--parallelism", str(args.parallelism)]
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
        emitted: dict[str, list[dict[str, Any]]] = {}
        for repeat in range(args.repeats):
            # Interleaved, so a slow spell of a shared machine hits both sides alike.
            for side, binning in (("ours", "java"), ("peer", "python")):
                target = Path(root) / f"{side}-{repeat}"
                shutil.copytree(source, target)
                command = job_command(python, "drift", ["--lake", str(target), "--binning", binning, *settings])
                runs[side].append(run(command, env))
                emitted[side] = records(Lake(target))
                shutil.rmtree(target)
    best = {side: min(runs[side], key=lambda summary: summary["runtime_s"]) for side in runs}
    print(
        json.dumps(
            {
                "benchmark": "flink_drift",
                "predictions": predictions,
                "features": args.numeric + args.categorical,
                "windows": len(emitted["ours"]),
                "parallelism": args.parallelism,
                "ours_java_predictions_per_s": round(predictions / best["ours"]["runtime_s"]),
                "peer_python_udf_predictions_per_s": round(predictions / best["peer"]["runtime_s"]),
                "ratio_ours_over_peer": round(best["peer"]["runtime_s"] / best["ours"]["runtime_s"], 2),
                "ours_end_to_end_s": round(best["ours"]["wall_s"], 1),
                "peer_end_to_end_s": round(best["peer"]["wall_s"], 1),
                "same_records": emitted["ours"] == emitted["peer"],
                "drifted_windows": sum(record["drifted"] for record in emitted["ours"]),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
