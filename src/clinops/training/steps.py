"""The training pipeline's steps. Each reads and writes plain files, so KFP components can wrap them thinly.

Every step resumes the job's MLflow run; an exception inside a step ends that run as FAILED, so a failed job
is visible in MLflow and nothing after the failure (registration, promotion) happens.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

import clinops
from clinops.lake.store import read_table_uri
from clinops.monitoring.profile import reference_profile
from clinops.specs.training_job import Algorithm, Metric, TrainingJobSpec
from clinops.training.algorithms import build_pipeline, predict_scores
from clinops.training.dataset import SUBGROUP_COLUMNS, content_hash, split_table, validate_table
from clinops.training.evaluation import metrics, subgroup_metrics, write_plots
from clinops.training.policy import decide
from clinops.training.tracking import configure_tracking, experiment_id
from clinops.training.tuning import tune_models

CHALLENGER_ALIAS = "challenger"
PROFILE_ARTIFACT = "reference_profile.json"
TABLE_FILE = "table.parquet"
META_FILE = "meta.json"
MODEL_FILE = "model.joblib"


def _spec(spec_json: str) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate_json(spec_json)


@contextmanager
def _in_run(run_id: str, tracking_uri: str) -> Iterator[None]:
    import mlflow

    configure_tracking(tracking_uri)
    # Nested runs (trials) are created in the active experiment: make it the job's, not "Default".
    mlflow.set_experiment(experiment_id=mlflow.MlflowClient().get_run(run_id).info.experiment_id)
    with mlflow.start_run(run_id=run_id):
        yield


def _write_table(directory: str, table: pd.DataFrame, meta: dict[str, Any]) -> None:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path / TABLE_FILE, index=False)
    (path / META_FILE).write_text(json.dumps(meta))


def _read_table(directory: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    path = Path(directory)
    return pd.read_parquet(path / TABLE_FILE), json.loads((path / META_FILE).read_text())


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return clinops.__version__
    return f"{clinops.__version__}+{commit}"


def start_run(spec_json: str, job_name: str, tracking_uri: str) -> str:
    """Create the job's MLflow run (the parent of every trial) and return its id."""
    from mlflow import MlflowClient

    spec = _spec(spec_json)
    tracking_uri = configure_tracking(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.create_run(
        experiment_id(f"clinops/{spec.model.name}", tracking_uri),
        run_name=job_name,
        tags={"clinops.training_job": job_name, "clinops.code_version": code_version()},
    )
    client.log_dict(run.info.run_id, json.loads(spec_json), "training_job_spec.json")
    return str(run.info.run_id)


def validate_dataset(spec_json: str, run_id: str, tracking_uri: str, lake_root: str, dataset_dir: str) -> None:
    import mlflow

    spec = _spec(spec_json)
    with _in_run(run_id, tracking_uri):
        frame = read_table_uri(spec.dataset.uri, lake_root).to_pandas()
        table, features = validate_table(frame, spec.dataset)
        digest = content_hash(frame)
        mlflow.log_params(
            {
                "dataset.uri": spec.dataset.uri,
                "dataset.target": spec.dataset.target,
                "dataset.rows": len(table),
                "dataset.features": len(features),
            }
        )
        mlflow.set_tag("clinops.dataset_hash", digest)
        _write_table(dataset_dir, table, {"features": features, "uri": spec.dataset.uri, "hash": digest})


def split_dataset(
    spec_json: str, run_id: str, tracking_uri: str, dataset_dir: str, train_dir: str, test_dir: str
) -> None:
    import mlflow

    spec = _spec(spec_json)
    with _in_run(run_id, tracking_uri):
        table, meta = _read_table(dataset_dir)
        data = split_table(table, meta["features"], spec.dataset, uri=meta["uri"], digest=meta["hash"])
        mlflow.log_params(
            {
                "split.train_rows": len(data.train),
                "split.test_rows": len(data.test),
                "split.test_fraction": spec.dataset.test_fraction,
                "split.seed": spec.dataset.seed,
            }
        )
        _write_table(train_dir, data.train, meta)
        _write_table(test_dir, data.test, meta)


def tune(spec_json: str, run_id: str, tracking_uri: str, train_dir: str) -> str:
    """Search; log every trial as a nested run; return the best algorithm and parameters as JSON."""
    import mlflow

    spec = _spec(spec_json)
    with _in_run(run_id, tracking_uri):
        train, meta = _read_table(train_dir)
        result = tune_models(
            train,
            features=meta["features"],
            target=spec.dataset.target,
            group_by=spec.dataset.group_by,
            algorithms=spec.algorithms,
            spec=spec.tuning,
            seed=spec.dataset.seed,
        )
        for number, trial in enumerate(result.trials):
            with mlflow.start_run(run_name=f"trial-{number:03d}-{trial.algorithm}", nested=True):
                mlflow.log_params({"algorithm": trial.algorithm, **trial.params})
                mlflow.set_tag("clinops.trial_status", "completed" if trial.completed else "stopped_early")
                for row in trial.history:
                    step = int(row["training_iteration"])
                    mlflow.log_metrics({k: v for k, v in row.items() if k != "training_iteration"}, step=step)
        mlflow.log_params(
            {"best.algorithm": result.algorithm.value, **{f"best.{k}": v for k, v in result.params.items()}}
        )
        mlflow.log_metrics({f"validation.{k}": v for k, v in result.metrics.items()})
        mlflow.log_metric("tuning.trials", len(result.trials))
        return json.dumps({"algorithm": result.algorithm.value, "params": result.params})


def fit_final(spec_json: str, run_id: str, tracking_uri: str, train_dir: str, best_json: str, model_dir: str) -> None:
    spec = _spec(spec_json)
    best = json.loads(best_json)
    with _in_run(run_id, tracking_uri):
        train, meta = _read_table(train_dir)
        pipeline = fit_pipeline(
            Algorithm(best["algorithm"]),
            best["params"],
            train[meta["features"]],
            train[spec.dataset.target],
            seed=spec.dataset.seed,
        )
        Path(model_dir).mkdir(parents=True, exist_ok=True)
        joblib.dump(pipeline, Path(model_dir) / MODEL_FILE)
        (Path(model_dir) / META_FILE).write_text(json.dumps({**meta, **best}))


def fit_pipeline(algorithm: Algorithm, params: dict[str, Any], X: pd.DataFrame, y: pd.Series, *, seed: int) -> Any:
    """The final model: the winning configuration fitted on the whole training split."""
    pipeline = build_pipeline(algorithm, params, seed=seed)
    pipeline.fit(X, y.to_numpy(dtype=int))
    return pipeline


def evaluate(spec_json: str, run_id: str, tracking_uri: str, model_dir: str, test_dir: str) -> str:
    """Held-out metrics overall and per subgroup, logged with the ROC and calibration plots; returns the metrics."""
    import mlflow

    spec = _spec(spec_json)
    with _in_run(run_id, tracking_uri):
        pipeline = joblib.load(Path(model_dir) / MODEL_FILE)
        test, meta = _read_table(test_dir)
        y = test[spec.dataset.target].to_numpy(dtype=int)
        scores = predict_scores(pipeline, test[meta["features"]])
        algorithm = json.loads((Path(model_dir) / META_FILE).read_text())["algorithm"]
        probabilistic = algorithm != Algorithm.ISOLATION_FOREST.value
        overall = metrics(y, scores, probabilistic=probabilistic)
        groups = [c for c in SUBGROUP_COLUMNS if c in test.columns]
        by_group = subgroup_metrics(test, y, scores, groups, probabilistic=probabilistic)
        mlflow.log_metrics({f"test.{k}": v for k, v in overall.items()})
        mlflow.log_metrics({f"test/{k}": v for k, v in by_group.items()})
        with tempfile.TemporaryDirectory() as plots:
            for path in write_plots(y, scores, Path(plots), probabilistic=probabilistic):
                mlflow.log_artifact(str(path), artifact_path="evaluation")
        return json.dumps(overall)


def log_registered_model(pipeline: Any, X: pd.DataFrame, name: str, algorithm: Algorithm) -> str:
    """Log the fitted pipeline in the active run and register it under ``name``; returns the new version.

    The signature comes from the training frame, so columns that held missing values are optional in it: that is
    what the model server lets a request leave out.
    """
    import mlflow
    from mlflow.models import infer_signature

    example = X.head(5)
    probabilistic = algorithm is not Algorithm.ISOLATION_FOREST
    with warnings.catch_warnings():
        # MLflow's hint to infer from realistic data with its missing values: that is what X is.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(X, predict_scores(pipeline, example))
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=name,
        pyfunc_predict_fn="predict_proba" if probabilistic else "score_samples",
        # skops refuses numpy dtypes inside fitted XGBoost/imputer state; cloudpickle is what serving loads.
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    return str(info.registered_model_version)


def register(spec_json: str, run_id: str, tracking_uri: str, job_name: str, model_dir: str, train_dir: str) -> str:
    """Register the model with signature, input example, reference profile and lineage; alias it challenger."""
    import mlflow
    from mlflow import MlflowClient

    spec = _spec(spec_json)
    with _in_run(run_id, tracking_uri):
        pipeline = joblib.load(Path(model_dir) / MODEL_FILE)
        model_meta = json.loads((Path(model_dir) / META_FILE).read_text())
        train, meta = _read_table(train_dir)
        X = train[meta["features"]]
        profile = reference_profile(pd.concat([X, train[[c for c in SUBGROUP_COLUMNS if c in train.columns]]], axis=1))
        mlflow.log_dict(profile, PROFILE_ARTIFACT)
        version = log_registered_model(pipeline, X, spec.model.name, Algorithm(model_meta["algorithm"]))
        client = MlflowClient(tracking_uri=tracking_uri)
        lineage = {
            "clinops.dataset_uri": meta["uri"],
            "clinops.dataset_hash": meta["hash"],
            "clinops.code_version": code_version(),
            "clinops.training_job": job_name,
            "clinops.algorithm": model_meta["algorithm"],
            "clinops.run_id": run_id,
            "clinops.reference_profile": f"runs:/{run_id}/{PROFILE_ARTIFACT}",
        }
        for key, value in lineage.items():
            client.set_model_version_tag(spec.model.name, version, key, value)
        client.set_registered_model_alias(spec.model.name, CHALLENGER_ALIAS, version)
        mlflow.set_tag("clinops.model_version", version)
        return version


def _champion_metric(
    name: str, alias: str, test: pd.DataFrame, target: str, metric: Metric, tracking_uri: str
) -> tuple[str | None, float | None, str | None]:
    """(champion version, its metric on this test split, why it could not be scored)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        champion = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None, None, None
    try:
        model = mlflow.sklearn.load_model(f"models:/{name}/{champion.version}")
        columns = list(model.feature_names_in_)
        missing = [c for c in columns if c not in test.columns]
        if missing:
            return str(champion.version), None, f"the test data lacks its features {missing[:5]}"
        y = test[target].to_numpy(dtype=int)
        probabilistic = metric in (Metric.ROC_AUC, Metric.PR_AUC) or hasattr(model, "predict_proba")
        scores = predict_scores(model, test[columns])
        value = metrics(y, scores, probabilistic=probabilistic).get(metric.value)
    except (MlflowException, OSError, ValueError, AttributeError) as exc:
        return str(champion.version), None, str(exc)
    return str(champion.version), value, None


def promote(spec_json: str, run_id: str, tracking_uri: str, version: str, test_dir: str, metrics_json: str) -> str:
    """Apply the promotion policy; write the decision and its reason as version tags; return the decision."""
    import mlflow
    from mlflow import MlflowClient

    spec = _spec(spec_json)
    policy, metric, name = spec.promotion, spec.tuning.metric, spec.model.name
    with _in_run(run_id, tracking_uri):
        test, _ = _read_table(test_dir)
        candidate = json.loads(metrics_json)
        champion_version, champion_value, problem = _champion_metric(
            name, policy.alias, test, spec.dataset.target, metric, tracking_uri
        )
        decision = decide(candidate, champion_value, policy, metric, champion_problem=problem)
        client = MlflowClient(tracking_uri=tracking_uri)
        tags = {
            "clinops.promotion.decision": "promoted" if decision.promote else "rejected",
            "clinops.promotion.reason": decision.reason,
            "clinops.promotion.metric": metric.value,
            f"clinops.promotion.candidate_{metric.value}": f"{decision.candidate:.6f}",
        }
        if champion_version is not None:
            tags["clinops.promotion.previous_version"] = champion_version
        if champion_value is not None:
            tags[f"clinops.promotion.champion_{metric.value}"] = f"{champion_value:.6f}"
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        if decision.promote:
            client.set_registered_model_alias(name, policy.alias, version)
        mlflow.set_tags({"clinops.promotion.decision": tags["clinops.promotion.decision"]})
        return json.dumps(
            {
                **asdict(decision),
                "version": version,
                "alias": policy.alias,
                "previous_version": champion_version,
                "run_id": run_id,
            }
        )
