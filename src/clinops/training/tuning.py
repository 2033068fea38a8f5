"""Hyperparameter search with Ray Tune: every trial grows its model rung by rung so ASHA can stop it early."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clinops.errors import ClinopsError
from clinops.specs.training_job import Algorithm, Metric, Scheduler, SearchAlgorithm, TuningSpec
from clinops.training.algorithms import BUDGET_PARAMETER, build_pipeline, predict_scores, search_space
from clinops.training.evaluation import metrics
from clinops.training.split import is_test_patient

# Every trial reports this many times (10 %, 20 %, … of its budget); ASHA compares trials at the same rung.
RUNGS = 10
# Trials survive at least this many rungs: the first tenth of a boosted model says little about its end.
GRACE_RUNGS = 2
VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class TrialRecord:
    algorithm: str
    params: dict[str, Any]
    history: list[dict[str, float]]
    completed: bool


@dataclass(frozen=True)
class TuningResult:
    algorithm: Algorithm
    params: dict[str, Any]
    metrics: dict[str, float]
    trials: list[TrialRecord] = field(default_factory=list)


def _budget_steps(total: int) -> list[int]:
    return sorted({max(1, round(total * (i + 1) / RUNGS)) for i in range(RUNGS)})


def _trial(config: dict[str, Any], data: dict[str, Any]) -> None:
    from ray import tune

    algorithm = Algorithm(config["algorithm"])
    params = dict(config[algorithm.value])
    X_fit, y_fit, X_valid, y_valid = data["X_fit"], data["y_fit"], data["X_valid"], data["y_valid"]
    probabilistic = algorithm is not Algorithm.ISOLATION_FOREST
    budget = BUDGET_PARAMETER[algorithm]

    def report(scores: np.ndarray[Any, Any]) -> None:
        tune.report(metrics(y_valid, scores, probabilistic=probabilistic))

    if algorithm is Algorithm.XGBOOST:
        import xgboost

        steps = set(_budget_steps(int(params["n_estimators"])))
        valid = xgboost.DMatrix(X_valid)

        class RungReporter(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                if epoch + 1 in steps:
                    report(model.predict(valid, iteration_range=(0, epoch + 1)))
                return False

        pipeline = build_pipeline(algorithm, params, seed=config["seed"])
        pipeline.set_params(model__callbacks=[RungReporter()])
        pipeline.fit(X_fit, y_fit)
    elif budget is not None:
        total = int(params[budget])
        pipeline = build_pipeline(algorithm, {**params, budget: 1}, seed=config["seed"])
        pipeline.set_params(model__warm_start=True)
        for step in _budget_steps(total):
            pipeline.set_params(**{f"model__{budget}": step})
            pipeline.fit(X_fit, y_fit)
            report(predict_scores(pipeline, X_valid))
    else:
        pipeline = build_pipeline(algorithm, params, seed=config["seed"])
        pipeline.fit(X_fit, y_fit)
        report(predict_scores(pipeline, X_valid))


def tune_models(
    train: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    group_by: str,
    algorithms: list[Algorithm],
    spec: TuningSpec,
    seed: int,
) -> TuningResult:
    """Search across ``algorithms`` on a patient-grouped validation split of ``train``."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    valid_mask = is_test_patient(train[group_by], test_fraction=VALIDATION_FRACTION, seed=seed + 1)
    fit, valid = train[~valid_mask], train[valid_mask]
    if fit[target].nunique() < 2 or valid[target].nunique() < 2:
        raise ClinopsError("the validation split holds a single class; more data is needed")
    data = {
        "X_fit": fit[features],
        "y_fit": fit[target].to_numpy(dtype=int),
        "X_valid": valid[features],
        "y_valid": valid[target].to_numpy(dtype=int),
    }
    metric = spec.metric.value
    mode = "max" if spec.metric.higher_is_better else "min"
    if Algorithm.ISOLATION_FOREST in algorithms and spec.metric not in (Metric.ROC_AUC, Metric.PR_AUC):
        raise ClinopsError("isolation_forest yields anomaly scores, not probabilities: tune it on roc_auc or pr_auc")
    start_ray()
    # One search per algorithm: ASHA then compares like with like (ten trees of a forest against ten of another,
    # never against a finished logistic regression). The trial budget is shared out, the deadline is common.
    deadline = time.monotonic() + spec.timeout_seconds
    budgets = [spec.trials // len(algorithms) + (i < spec.trials % len(algorithms)) for i in range(len(algorithms))]
    trials: list[TrialRecord] = []
    best: tuple[float, Algorithm, dict[str, Any], dict[str, float]] | None = None
    errors: list[str] = []
    for algorithm, budget in zip(algorithms, budgets, strict=True):
        remaining = deadline - time.monotonic()
        if budget == 0 or remaining <= 1:
            continue
        scheduler = (
            ASHAScheduler(max_t=RUNGS, grace_period=GRACE_RUNGS, reduction_factor=3)
            if spec.scheduler is Scheduler.ASHA
            else FIFOScheduler()  # type: ignore[no-untyped-call]
        )
        param_space = {
            "algorithm": algorithm.value,
            "seed": seed,
            algorithm.value: search_space(algorithm, spec.search_space.get(algorithm)),
        }
        with tempfile.TemporaryDirectory(prefix="clinops-tune-") as storage:
            tuner = tune.Tuner(
                tune.with_resources(tune.with_parameters(_trial, data=data), {"cpu": 1}),
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric=metric,
                    mode=mode,
                    scheduler=scheduler,
                    search_alg=_searcher(spec, seed, metric, mode),
                    num_samples=budget,
                    time_budget_s=remaining,
                    # A fresh worker process per trial costs seconds; a fit on gold-table sizes costs less.
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(storage_path=storage, name=algorithm.value, verbose=0),
            )
            results = tuner.fit()
        outcomes = [results[i] for i in range(len(results))]
        for result in outcomes:
            if result.error is not None or result.metrics_dataframe is None:
                errors.append(f"{algorithm.value}: {result.error}")
                continue
            config = result.config or {}
            history = result.metrics_dataframe[["training_iteration", *_metric_columns(result.metrics_dataframe)]]
            trials.append(
                TrialRecord(
                    algorithm=algorithm.value,
                    params=dict(config[algorithm.value]),
                    history=[{str(k): float(v) for k, v in row.items()} for row in history.to_dict("records")],
                    completed=int(history["training_iteration"].max()) >= _expected_rungs(config),
                )
            )
        if all(r.error is not None for r in outcomes):
            continue
        top = results.get_best_result(metric=metric, mode=mode, scope="last")
        assert top.config is not None
        assert top.metrics is not None
        score = float(top.metrics[metric])
        better = best is None or (score > best[0] if spec.metric.higher_is_better else score < best[0])
        if better:
            scores = {k: float(v) for k, v in top.metrics.items() if k in _metric_columns(top.metrics)}
            best = (score, algorithm, dict(top.config[algorithm.value]), scores)
    if best is None:
        raise ClinopsError(f"every trial failed: {errors[0] if errors else 'the time budget ran out first'}")
    return TuningResult(algorithm=best[1], params=best[2], metrics=best[3], trials=trials)


def _searcher(spec: TuningSpec, seed: int, metric: str, mode: str) -> Any:
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if spec.search is SearchAlgorithm.RANDOM:
        return BasicVariantGenerator(random_state=seed, max_concurrent=spec.max_concurrent_trials)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    return ConcurrencyLimiter(
        OptunaSearch(metric=metric, mode=mode, sampler=sampler), max_concurrent=spec.max_concurrent_trials
    )


def start_ray() -> None:
    """A local Ray node sized to this machine, without the dashboard (idempotent)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a clinical network
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=max(2, os.cpu_count() or 2),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )


def _metric_columns(row: Any) -> list[str]:
    return [m.value for m in Metric if m.value in row]


def _expected_rungs(config: dict[str, Any]) -> int:
    algorithm = Algorithm(config["algorithm"])
    budget = BUDGET_PARAMETER[algorithm]
    return 1 if budget is None else len(_budget_steps(int(config[algorithm.value][budget])))
