"""Drift statistics on a wide window against Evidently's DataDriftPreset with the same per-column test, in one run.

Both sides get the same frames: a reference and a current frame of ``--rows`` by ``--columns`` numeric columns of
assorted shapes (normal, lognormal, uniform, exponential, integer-valued), where ``--shifted`` columns of the
current frame move (mean shifts and scale changes of a few percent of a spread). Both run the two-sample KS test per
column at the same threshold and the same dataset drift share.

Ours: ``window_counts`` + ``drift_report`` against a reference profile built once (its build time is printed
apart: a deployment builds it once at registration, a window never pays it). The peer: Evidently 0.7.23, which does
not import with pandas 3, so it runs in its own cached environment (created here with the Makefile's uv if missing)
on the frames passed as Parquet; only ``Report.run`` is timed there. Prints one JSON line: both times, their ratio,
and on how many columns the two reach the same drift decision.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from timing import best_of

EVIDENTLY = "0.7.23"
UV_VERSION = "0.13.8"
CACHE = Path(os.environ.get("CACHE", Path.home() / ".cache/clinops"))
PEER_ENV = CACHE / "envs" / f"evidently-{EVIDENTLY}"
UV = CACHE / "tools" / f"uv-{UV_VERSION}" / "bin" / "uv"


def make_frames(rows: int, columns: int, shifted: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Reference and current frames; every ``columns // shifted``-th column of the current one moves."""
    rng = np.random.default_rng(seed)
    shapes = [
        lambda n, loc, scale: rng.normal(50 + loc, 10 * scale, n),
        lambda n, loc, scale: rng.lognormal(1 + loc / 10, 0.5 * scale, n),
        lambda n, loc, scale: rng.uniform(loc, 100 * scale + loc, n),
        lambda n, loc, scale: rng.exponential(5 * scale, n) + loc,
        lambda n, loc, scale: np.round(rng.normal(80 + loc, 12 * scale, n)),  # integer-valued, like heart rate
    ]
    names = [f"f{i:02d}" for i in range(columns)]
    step = max(1, columns // max(shifted, 1))
    moved = names[::step][:shifted]
    reference, current = {}, {}
    for i, name in enumerate(names):
        shape = shapes[i % len(shapes)]
        reference[name] = shape(rows, 0.0, 1.0)
        if name not in moved:
            current[name] = shape(rows, 0.0, 1.0)
        elif len(moved) and moved.index(name) % 4 == 3:
            current[name] = shape(rows, 0.0, 1.05)  # 5 % wider
        else:
            current[name] = shape(rows, 0.5, 1.0)  # a twentieth of a spread or so
    return pd.DataFrame(reference), pd.DataFrame(current), moved


def ours(
    reference: pd.DataFrame, current: pd.DataFrame, repeats: int, threshold: float, share: float
) -> dict[str, Any]:
    # Imported here: this file also runs as the peer, inside an environment without clinops.
    from clinops.monitoring.bins import window_counts
    from clinops.monitoring.drift import drift_report
    from clinops.monitoring.profile import reference_profile

    profile_s, profile = best_of(1, lambda: reference_profile(reference))
    seconds, result = best_of(
        repeats,
        lambda: drift_report(
            window_counts(current, profile), profile, numerical_test="ks", threshold=threshold, drift_share=share
        ),
    )
    return {
        "seconds": seconds,
        "profile_seconds": profile_s,
        "drifted": {name: feature.drifted for name, feature in result.features.items()},
        "p_values": {name: feature.p_value for name, feature in result.features.items()},
        "dataset_drift": result.drifted,
    }


def peer(reference_path: str, current_path: str, threshold: float, share: float) -> None:
    """Run inside the Evidently environment: one timed ``Report.run``, results as one JSON line on stdout."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    definition = DataDefinition(numerical_columns=list(reference.columns))
    datasets = [Dataset.from_pandas(frame, data_definition=definition) for frame in (current, reference)]
    report = Report([DataDriftPreset(num_method="ks", threshold=threshold, drift_share=share)], include_tests=True)
    start = time.perf_counter()
    snapshot = report.run(*datasets)
    seconds = time.perf_counter() - start
    result = snapshot.dict()
    drifted, p_values, dataset_drift = {}, {}, None
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            drifted[params["column"]] = test["status"] == "FAIL"
        elif params["type"].endswith(":DriftedColumnsCount"):
            dataset_drift = test["status"] == "FAIL"
    for metric in result["metrics"]:
        if metric["config"]["type"].endswith(":ValueDrift"):
            p_values[metric["config"]["column"]] = metric["value"]
    print(json.dumps({"seconds": seconds, "drifted": drifted, "p_values": p_values, "dataset_drift": dataset_drift}))


def peer_python() -> Path:
    python = PEER_ENV / "bin" / "python"
    if not python.exists():
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
        subprocess.run([str(UV), "venv", "--python", sys.executable, str(PEER_ENV)], check=True, env=env)
        packages = [f"evidently=={EVIDENTLY}", "pandas<3", "pyarrow>=16"]
        subprocess.run([str(UV), "pip", "install", "--python", str(python), *packages], check=True, env=env)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--shifted", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--drift-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--peer", nargs=2, metavar=("REFERENCE", "CURRENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer(*args.peer, args.threshold, args.drift_share)
        return

    reference, current, moved = make_frames(args.rows, args.columns, args.shifted, args.seed)
    python = peer_python()
    with tempfile.TemporaryDirectory() as root:
        paths = [str(Path(root) / f"{side}.parquet") for side in ("reference", "current")]
        reference.to_parquet(paths[0])
        current.to_parquet(paths[1])
        command = [str(python), __file__, "--peer", *paths, "--threshold", str(args.threshold)]
        completed = subprocess.run(
            [*command, "--drift-share", str(args.drift_share)], check=True, capture_output=True, text=True
        )
    theirs = json.loads(completed.stdout.strip().splitlines()[-1])
    mine = ours(reference, current, args.repeats, args.threshold, args.drift_share)

    columns = list(reference.columns)
    agree = [name for name in columns if mine["drifted"][name] == theirs["drifted"][name]]
    print(
        json.dumps(
            {
                "benchmark": "drift_statistics_ks",
                "rows": args.rows,
                "columns": args.columns,
                "shifted_columns": len(moved),
                "ours_s": round(mine["seconds"], 3),
                "ours_profile_build_s": round(mine["profile_seconds"], 3),
                "peer_evidently_s": round(theirs["seconds"], 3),
                "ratio_peer_over_ours": round(theirs["seconds"] / mine["seconds"], 1),
                "ratio_peer_over_ours_with_profile": round(
                    theirs["seconds"] / (mine["seconds"] + mine["profile_seconds"]), 1
                ),
                "decision_agreement": round(len(agree) / len(columns), 4),
                "disagreeing_columns": {
                    name: {"ours_p": mine["p_values"][name], "evidently_p": theirs["p_values"][name]}
                    for name in columns
                    if name not in agree
                },
                "drifted_ours": sum(mine["drifted"].values()),
                "drifted_evidently": sum(theirs["drifted"].values()),
                "shifted_detected_by_both": sum(mine["drifted"][n] and theirs["drifted"][n] for n in moved),
                "dataset_drift_agrees": mine["dataset_drift"] == theirs["dataset_drift"],
            }
        )
    )


if __name__ == "__main__":
    main()
