"""Training path against its peers in one run: ASHA search vs a grid search, final fit vs bare XGBoost, model vs oracle.

1. HPO: our Ray Tune ASHA search (``tune_models``, XGBoost only) against scikit-learn ``GridSearchCV`` over the same
   search space discretised into a grid over all seven parameters. Both score candidates on the very same patient-
   grouped validation split of the training data (a ``PredefinedSplit`` rebuilt exactly as ``tune_models`` builds its
   own), run two candidates at a time, and have their winner refitted on the whole training split with
   ``fit_pipeline`` and scored on the held-out test patients. Target: within 0.002 test AUC of the grid's best in at
   most a third of its time.
2. Overhead: the final-fit step (``fit_pipeline``) against a bare ``xgboost.train`` with the same parameters on the
   same rows, best of N each. Target: at most 10 % slower.
3. Quality: test AUC of our model (the ASHA winner, as the platform would ship it) against the oracle's AUC, the
   generator's true risk on the same test patients. Target: at least 0.98 of it.

Targets are reported, never asserted. Prints one JSON line on stdout; Ray's logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
import xgboost
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from clinops.data.emit import emit_to_lake
from clinops.data.generator import GeneratorConfig, generate
from clinops.data.oracle import oracle_auc
from clinops.features.offline import build_gold
from clinops.lake.silver import bronze_to_silver
from clinops.lake.store import Lake
from clinops.specs.training_job import Algorithm, DatasetSpec, Scheduler, TuningSpec
from clinops.training.algorithms import DEFAULT_SEARCH_SPACES, build_pipeline, predict_scores
from clinops.training.dataset import TrainingData, prepare_training_data
from clinops.training.split import is_test_patient
from clinops.training.steps import fit_pipeline
from clinops.training.tuning import VALIDATION_FRACTION, start_ray, tune_models
from timing import best_of

# Read when Ray starts, which is later than this; a benchmark has no business phoning home either.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SEED = 7
TARGET = "readmitted_30d"
CONCURRENCY = 2
# The default XGBoost search space, discretised over all seven of its parameters: three budgets and depths spanning
# their ranges, two levels of each of the other five (a grid that pins a parameter does not search it). 288 points.
GRID: dict[str, list[Any]] = {
    "n_estimators": [100, 300, 600],
    "max_depth": [2, 4, 6],
    "learning_rate": [0.03, 0.1],
    "min_child_weight": [1.0, 5.0],
    "subsample": [0.7, 0.9],
    "colsample_bytree": [0.5, 0.8],
    "reg_lambda": [0.3, 3.0],
}


def check_grid_in_space() -> None:
    """A grid reaching outside the space ASHA samples from would compare two different searches."""
    space = DEFAULT_SEARCH_SPACES[Algorithm.XGBOOST]
    if set(GRID) != set(space):
        raise ValueError(f"grid parameters {sorted(GRID)} differ from the search space's {sorted(space)}")
    for name, values in GRID.items():
        r = space[name]
        outside = [v for v in values if not float(r.low or 0) <= v <= float(r.high or 0)]
        if outside:
            raise ValueError(f"grid values {outside} of {name} lie outside [{r.low}, {r.high}]")


def grid_points() -> int:
    return len(list(itertools.product(*GRID.values())))


def build_data(patients: int, root: str) -> tuple[Lake, TrainingData]:
    lake = Lake(root)
    emit_to_lake(generate(GeneratorConfig(patients=patients, seed=SEED)), lake)
    bronze_to_silver(lake)
    gold = build_gold(lake)
    return lake, prepare_training_data(gold, DatasetSpec(uri="bench", target=TARGET, seed=SEED))


def plain(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe and readable: Ray hands back numpy scalars and long floats."""
    return {k: int(v) if float(v).is_integer() else round(float(v), 4) for k, v in sorted(params.items())}


def held_out_auc(data: TrainingData, params: dict[str, Any]) -> float:
    X, y = data.xy(data.train)
    pipeline = fit_pipeline(Algorithm.XGBOOST, params, X, pd.Series(y), seed=SEED)
    X_test, y_test = data.xy(data.test)
    return float(roc_auc_score(y_test, predict_scores(pipeline, X_test)))


def run_grid(data: TrainingData) -> tuple[float, GridSearchCV]:
    X, y = data.xy(data.train)
    # The validation patients tune_models holds out of the training split: same fraction, same seed + 1.
    valid = is_test_patient(data.train[data.group_by], test_fraction=VALIDATION_FRACTION, seed=SEED + 1)
    search = GridSearchCV(
        build_pipeline(Algorithm.XGBOOST, {}, seed=SEED),
        {f"model__{name}": values for name, values in GRID.items()},
        scoring="roc_auc",
        cv=PredefinedSplit(np.where(valid, 0, -1)),
        n_jobs=CONCURRENCY,
        refit=True,
    )
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start, search


def run_asha(data: TrainingData, trials: int, timeout: int) -> tuple[float, float, Any]:
    """(seconds with Ray's start-up, of which Ray's start-up, result).

    A training job pays for starting Ray, so the search's time includes it; it is also timed apart because it is a
    fixed cost while the rest grows with the trial count. Ray is started as ``tune_models`` would start it.
    """

    spec = TuningSpec(
        trials=trials,
        max_concurrent_trials=CONCURRENCY,
        scheduler=Scheduler.ASHA,
        timeout_seconds=timeout,
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout to the one JSON line
        start_ray()
        ray_start = time.perf_counter() - start
        result = tune_models(
            data.train,
            features=data.features,
            target=data.target,
            group_by=data.group_by,
            algorithms=[Algorithm.XGBOOST],
            spec=spec,
            seed=SEED,
        )
    return time.perf_counter() - start, ray_start, result


def bare_params(params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    translated = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "nthread": 1,
        "seed": SEED,
        "eta": float(params["learning_rate"]),
        "max_depth": int(params["max_depth"]),
        "subsample": float(params["subsample"]),
        "colsample_bytree": float(params["colsample_bytree"]),
        "min_child_weight": float(params["min_child_weight"]),
        "lambda": float(params["reg_lambda"]),
    }
    return translated, int(params["n_estimators"])


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=15000)
    parser.add_argument("--asha-trials", type=int, default=24, help="ASHA trials (the grid has 288 points)")
    parser.add_argument("--timeout", type=int, default=1200, help="wall-clock budget of the ASHA search, seconds")
    parser.add_argument("--repeats", type=int, default=3, help="best-of for the final-fit overhead timing")
    args = parser.parse_args()
    check_grid_in_space()

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="clinops-bench-") as root:
            lake, data = build_data(args.patients, root)
            oracle = oracle_auc(lake, target=TARGET, test_fraction=0.2, seed=SEED)
        data_s = time.perf_counter() - started

        # The grid runs first: Ray's daemons, once started, would keep sharing the cores with whatever runs next.
        grid_s, grid = run_grid(data)
        grid_params = {k.removeprefix("model__"): v for k, v in grid.best_params_.items()}
        asha_s, ray_start_s, asha = run_asha(data, args.asha_trials, args.timeout)
        shutdown_ray()  # before the overhead timing, for the same reason
        asha_auc, grid_auc = held_out_auc(data, asha.params), held_out_auc(data, grid_params)

        X, y = data.xy(data.train)
        y_series = pd.Series(y)
        ours_s, ours_model = best_of(
            args.repeats, lambda: fit_pipeline(Algorithm.XGBOOST, asha.params, X, y_series, seed=SEED)
        )
        params, rounds = bare_params(asha.params)
        # DMatrix construction is inside the timing: fit_pipeline builds its own matrix from the same frame.
        bare_s, bare_model = best_of(
            args.repeats, lambda: xgboost.train(params, xgboost.DMatrix(X, label=y), num_boost_round=rounds)
        )
        X_test, _ = data.xy(data.test)
        # Same parameters should mean the same model; a gap here would make the overhead figure meaningless.
        prediction_gap = float(
            np.max(np.abs(predict_scores(ours_model, X_test) - bare_model.predict(xgboost.DMatrix(X_test))))
        )
    finally:
        shutdown_ray()

    completed = sum(t.completed for t in asha.trials)
    print(
        json.dumps(
            {
                "benchmark": "training_hpo_overhead_quality",
                "patients": args.patients,
                "train_rows": len(data.train),
                "test_rows": len(data.test),
                "features": len(data.features),
                "data_prep_seconds": round(data_s, 1),
                "grid_points": grid_points(),
                "asha_trials": len(asha.trials),
                "asha_trials_run_to_full_budget": completed,
                "asha_seconds": round(asha_s, 2),
                "asha_ray_start_seconds": round(ray_start_s, 2),
                "grid_seconds": round(grid_s, 2),
                "grid_refit_seconds": round(float(grid.refit_time_), 2),
                "time_ratio_grid_over_asha": round(grid_s / asha_s, 2),
                "asha_valid_auc": round(asha.metrics["roc_auc"], 4),
                "grid_valid_auc": round(float(grid.best_score_), 4),
                "asha_test_auc": round(asha_auc, 4),
                "grid_test_auc": round(grid_auc, 4),
                "auc_diff_asha_minus_grid": round(asha_auc - grid_auc, 4),
                "asha_best_params": plain(asha.params),
                "grid_best_params": plain(grid_params),
                "final_fit_seconds": round(ours_s, 3),
                "bare_xgboost_seconds": round(bare_s, 3),
                "final_fit_overhead_pct": round((ours_s / bare_s - 1) * 100, 1),
                "final_fit_vs_bare_max_prediction_gap": float(f"{prediction_gap:.2g}"),
                "oracle_auc": round(oracle.auc, 4),
                "model_auc": round(asha_auc, 4),
                "model_over_oracle": round(asha_auc / oracle.auc, 4),
                "total_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
