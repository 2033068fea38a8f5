"""The training pipeline end to end, through kfp.local, against a real MLflow tracking server."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from clinops.errors import ClinopsError
from clinops.local.training import run_training_job
from clinops.specs.common import parse_resource
from clinops.specs.training_job import TrainingJob
from clinops.training import steps

MODEL = "readmission-it"


@pytest.fixture
def lake_root(gold_lake: str) -> str:
    return gold_lake


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINOPS_HOME", str(tmp_path / "home"))


def training_job(name: str, **spec: object) -> TrainingJob:
    document = {
        "apiVersion": "clinops.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": MODEL},
            "dataset": {"uri": "lake://gold/encounters/", "target": "readmitted_30d"},
            "algorithms": ["xgboost", "logistic_regression"],
            "tuning": {
                "trials": 2,
                "maxConcurrentTrials": 2,
                "timeoutSeconds": 600,
                "searchSpace": {"xgboost": {"n_estimators": {"type": "int", "low": 40, "high": 80}}},
            },
            "promotion": {"minImprovement": 0.05, "gates": {"roc_auc": 0.7}},
            **spec,
        },
    }
    return parse_resource(TrainingJob, document)


def run_steps_with(
    job: TrainingJob, best: dict[str, Any], tracking_uri: str, lake_root: str, work: Path
) -> dict[str, Any]:
    """The pipeline's steps in process with a given configuration instead of a search: the registry and promotion
    half of a run, without a second pipeline (the pipeline itself runs in full above)."""
    spec = job.spec.model_dump_json(by_alias=True)
    dataset, train, test, model = (str(work / name) for name in ("dataset", "train", "test", "model"))
    run_id = steps.start_run(spec, job.metadata.name, tracking_uri)
    steps.validate_dataset(spec, run_id, tracking_uri, lake_root, dataset)
    steps.split_dataset(spec, run_id, tracking_uri, dataset, train, test)
    steps.fit_final(spec, run_id, tracking_uri, train, json.dumps(best), model)
    metrics = steps.evaluate(spec, run_id, tracking_uri, model, test)
    version = steps.register(spec, run_id, tracking_uri, job.metadata.name, model, train)
    decision: dict[str, Any] = json.loads(steps.promote(spec, run_id, tracking_uri, version, test, metrics))
    return decision


def in_child_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``function`` in a fresh interpreter, as the pipeline runs each step: MLflow's client leaves pooled
    sockets behind in the process that used it."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def test_first_run_registers_a_champion_then_a_weaker_margin_is_rejected(
    mlflow_server: str, lake_root: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)

    first = run_training_job(training_job("weekly-1"), tracking_uri=mlflow_server, lake_root=lake_root)
    assert first.decision["promote"], first.decision
    version = client.get_model_version(MODEL, first.version)
    assert client.get_model_version_by_alias(MODEL, "champion").version == first.version
    assert client.get_model_version_by_alias(MODEL, "challenger").version == first.version
    for tag in (
        "clinops.dataset_uri",
        "clinops.dataset_hash",
        "clinops.code_version",
        "clinops.training_job",
        "clinops.promotion.decision",
        "clinops.promotion.reason",
    ):
        assert version.tags.get(tag), tag
    assert version.tags["clinops.training_job"] == "weekly-1"
    assert first.test_metrics["roc_auc"] > 0.7

    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"reference_profile.json", "evaluation", "training_job_spec.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(first.run_id, "evaluation")}
    assert plots == {"evaluation/roc_curve.png", "evaluation/calibration.png"}
    assert any(k.startswith("test/roc_auc/sex/") for k in run.data.metrics)
    trials = client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{first.run_id}'")
    assert len(trials) == 2
    assert all("algorithm" in t.data.params and "roc_auc" in t.data.metrics for t in trials)

    # Same data, a configuration of the same family: it cannot beat the champion by 0.05 on the same held-out split.
    best = {"algorithm": "xgboost", "params": {"n_estimators": 40}}
    second = in_child_process(run_steps_with, training_job("weekly-2"), best, mlflow_server, lake_root, tmp_path)
    assert not second["promote"]
    assert "improvement" in second["reason"]
    assert second["previous_version"] == first.version
    assert client.get_model_version_by_alias(MODEL, "champion").version == first.version
    assert client.get_model_version_by_alias(MODEL, "challenger").version == second["version"]
    rejected = client.get_model_version(MODEL, second["version"])
    assert rejected.tags["clinops.promotion.decision"] == "rejected"


def test_a_bad_dataset_fails_the_run_and_registers_nothing(mlflow_server: str, lake_root: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_server)
    before = len(client.search_model_versions(f"name = '{MODEL}-bad'"))
    job = training_job(
        "broken", model={"name": f"{MODEL}-bad"}, dataset={"uri": "lake://gold/encounters/", "target": "no_such_column"}
    )
    with pytest.raises(ClinopsError, match="target column 'no_such_column' is not in the dataset"):
        run_training_job(job, tracking_uri=mlflow_server, lake_root=lake_root)
    experiment = client.get_experiment_by_name(f"clinops/{MODEL}-bad")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`clinops.training_job` = 'broken'")
    assert run.info.status == "FAILED"
    assert len(client.search_model_versions(f"name = '{MODEL}-bad'")) == before == 0


def test_an_unreachable_tracking_server_is_one_clear_error(lake_root: str) -> None:
    from tests.integration.conftest import free_port

    with pytest.raises(ClinopsError, match=r"MLflow tracking server at http://127.0.0.1:\d+ is unreachable"):
        run_training_job(training_job("nowhere"), tracking_uri=f"http://127.0.0.1:{free_port()}", lake_root=lake_root)
