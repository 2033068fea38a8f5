"""All of the operator's KFP and MLflow I/O: experiments, runs, recurring runs and the outcome of a search."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kopf import Logger

from clinops_operator.builders.training_job import Outcome, RecurringRun

# The reachability probe of the tracking server: the MLflow client itself retries for minutes.
MLFLOW_PROBE_TIMEOUT_S = 3
PAGE_SIZE = 100


@dataclass(frozen=True)
class TrainingConfig:
    """Where TrainingJobs run (KFP), what their pipeline is told (MLflow, lake) and how often runs are polled."""

    kfp_endpoint: str | None = None
    tracking_uri: str = "http://mlflow:5000"
    read_outcomes: bool = False
    lake_root: str = "s3://clinops-lake"
    poll_interval_s: float = 15.0


@dataclass(frozen=True)
class Run:
    run_id: str
    state: str | None


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
# Redirecting stdout and catching warnings swap process-wide state: two threads interleaving would leave it swapped.
_quiet_lock = threading.RLock()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # kfp.Client prints a UI link for each experiment and run, and warns on construction about server versions.
    with _quiet_lock, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def client(endpoint: str | None) -> Any:
    """One ``kfp.Client`` per endpoint: its construction asks the server for its health."""
    if not endpoint:
        raise ValueError("no KFP endpoint is configured (CLINOPS_KFP_ENDPOINT)")
    with _clients_lock:
        if endpoint not in _clients:
            import kfp

            with _quiet():
                _clients[endpoint] = kfp.Client(host=endpoint)
        return _clients[endpoint]


def _by_name(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})


def ensure_experiment(kfp: Any, name: str) -> str:
    """The experiment's id, created when missing (``create_experiment`` finds one by name first)."""
    with _quiet():
        return str(kfp.create_experiment(name).experiment_id)


def find_run(kfp: Any, experiment_id: str, display_name: str) -> Run | None:
    """The oldest run of that name: one was submitted already if a retry or restart comes this way again."""
    response = kfp.list_runs(
        experiment_id=experiment_id, filter=_by_name(display_name), page_size=PAGE_SIZE, sort_by="created_at"
    )
    runs = [run for run in response.runs or [] if run.display_name == display_name]
    return Run(str(runs[0].run_id), runs[0].state) if runs else None


@contextlib.contextmanager
def _package(pipeline: dict[str, Any]) -> Iterator[str]:
    # kfp.Client takes a compiled pipeline only as a file.
    with tempfile.TemporaryDirectory(prefix="clinops-run-") as directory:
        path = Path(directory) / "pipeline.yaml"
        path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
        yield str(path)


def find_or_submit(
    kfp: Any,
    experiment_id: str,
    display_name: str,
    *,
    pipeline: Callable[[], dict[str, Any]],
    parameters: dict[str, str],
    logger: Logger,
) -> Run:
    """The run of that name, submitted from ``pipeline()`` only when there is none yet."""
    found = find_run(kfp, experiment_id, display_name)
    if found is not None:
        return found
    with _package(pipeline()) as path, _quiet():
        run = kfp.run_pipeline(experiment_id, display_name, pipeline_package_path=path, params=parameters)
    logger.info("Submitted KFP run %s (%s)", display_name, run.run_id)
    return Run(str(run.run_id), run.state)


def run_state(kfp: Any, run_id: str) -> str | None:
    state = kfp.get_run(run_id).state
    return None if state is None else str(state)


def terminate(kfp: Any, run_id: str, *, logger: Logger) -> None:
    kfp.terminate_run(run_id)
    logger.info("Terminated KFP run %s", run_id)


def _recurring_runs(kfp: Any, experiment_id: str, display_name: str) -> list[Any]:
    response = kfp.list_recurring_runs(experiment_id=experiment_id, filter=_by_name(display_name), page_size=PAGE_SIZE)
    return [found for found in response.recurring_runs or [] if found.display_name == display_name]


def sync_recurring_run(
    kfp: Any,
    experiment_id: str,
    display_name: str,
    desired: RecurringRun | None,
    *,
    pipeline: Callable[[], dict[str, Any]],
    logger: Logger,
) -> str | None:
    """Make the recurring runs named ``display_name`` exactly ``desired``: keep a match, replace any other.

    The id of the recurring run that remains, if any.
    """
    kept: str | None = None
    for found in _recurring_runs(kfp, experiment_id, display_name):
        if desired is not None and kept is None and found.description == desired.description:
            kept = str(found.recurring_run_id)
            continue
        kfp.delete_recurring_run(found.recurring_run_id)
        logger.info("Deleted KFP recurring run %s (%s)", display_name, found.recurring_run_id)
    if desired is None or kept is not None:
        return kept
    with _package(pipeline()) as path, _quiet():
        created = kfp.create_recurring_run(
            experiment_id,
            desired.display_name,
            description=desired.description,
            cron_expression=desired.cron,
            params=desired.parameters,
            pipeline_package_path=path,
            no_catchup=True,
        )
    logger.info("Created KFP recurring run %s (%s)", desired.display_name, created.recurring_run_id)
    return str(created.recurring_run_id)


def _reachable(tracking_uri: str) -> bool:
    if not tracking_uri.startswith(("http://", "https://")):
        return True
    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=MLFLOW_PROBE_TIMEOUT_S):
            return True
    except (urllib.error.URLError, OSError):
        return False


def outcome(tracking_uri: str, *, model: str, job_name: str) -> Outcome | None:
    """The version the run registered and the promotion decision, or None when MLflow cannot tell yet."""
    if not _reachable(tracking_uri):
        return None
    from mlflow import MlflowClient

    mlflow = MlflowClient(tracking_uri=tracking_uri)
    experiment = mlflow.get_experiment_by_name(f"clinops/{model}")
    if experiment is None:
        return None
    runs = mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`clinops.training_job` = '{job_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    tags = runs[0].data.tags
    decision = tags.get("clinops.promotion.decision")
    return Outcome(
        mlflow_run_id=runs[0].info.run_id,
        model_version=tags.get("clinops.model_version"),
        promoted=None if decision is None else decision == "promoted",
    )
