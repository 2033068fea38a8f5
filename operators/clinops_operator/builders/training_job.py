"""TrainingJob: the compiled training pipeline, its KFP names and parameters, and status from the run's state."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clinops.specs.status import ConditionStatus, TrainingPhase
from clinops.specs.training_job import TrainingJobSpec
from clinops_operator.builders.common import condition

# KFP's runtime states, grouped by the phase each means for the TrainingJob.
PENDING_STATES = frozenset({"RUNTIME_STATE_UNSPECIFIED", "PENDING"})
RUNNING_STATES = frozenset({"RUNNING", "PAUSED", "CANCELING"})
SUCCEEDED_STATES = frozenset({"SUCCEEDED", "SKIPPED"})
FAILED_STATES = frozenset({"FAILED", "CANCELED"})
# The uid's prefix tells a recreated TrainingJob of the same name from the one before it.
UID_PREFIX = 8


@dataclass(frozen=True)
class Outcome:
    """What the search registered and decided, as MLflow recorded it."""

    mlflow_run_id: str | None = None
    model_version: str | None = None
    promoted: bool | None = None


@dataclass(frozen=True)
class RecurringRun:
    """A KFP recurring run: its display name finds it again, its description names the generation it was made for."""

    display_name: str
    description: str
    cron: str
    parameters: dict[str, str]


def experiment_name(*, namespace: str) -> str:
    return f"clinops-{namespace}"


def _prefix(*, namespace: str, name: str, uid: str) -> str:
    return f"{namespace}-{name}-{uid[:UID_PREFIX]}"


def run_name(*, namespace: str, name: str, uid: str, generation: int) -> str:
    """One run per generation: finding this name before submitting keeps retries and restarts from duplicating it."""
    return f"{_prefix(namespace=namespace, name=name, uid=uid)}-g{generation}"


def parameters(*, name: str, spec: TrainingJobSpec, tracking_uri: str, lake_root: str) -> dict[str, str]:
    """The training pipeline's parameters, as ``clinops train`` passes them to the same pipeline on one machine."""
    return {
        "spec_json": spec.model_dump_json(by_alias=True),
        "job_name": name,
        "tracking_uri": tracking_uri,
        "lake_root": lake_root,
    }


def compiled_pipeline(*, parameters: dict[str, str]) -> dict[str, Any]:
    """The training pipeline's IR with ``parameters`` as its defaults, so the spec alone reproduces the run."""
    from clinops_pipelines.training import training_pipeline
    from kfp import compiler

    # The compiler writes only to a file; the directory leaves nothing behind.
    with tempfile.TemporaryDirectory(prefix="clinops-pipeline-") as directory:
        path = Path(directory) / "training.yaml"
        compiler.Compiler().compile(training_pipeline, package_path=str(path), pipeline_parameters=parameters)
        compiled: dict[str, Any] = yaml.safe_load(path.read_text())
    return compiled


def kfp_cron(schedule: str) -> str:
    """KFP's scheduler reads six fields, seconds first; the spec holds the usual five."""
    return f"0 {schedule}"


def recurring_run_name(*, namespace: str, name: str, uid: str) -> str:
    """One recurring run per object whatever its generation: a new generation replaces it."""
    return f"{_prefix(namespace=namespace, name=name, uid=uid)}-schedule"


def recurring_run(
    *, namespace: str, name: str, uid: str, generation: int, spec: TrainingJobSpec, parameters: dict[str, str]
) -> RecurringRun | None:
    """The recurring run a ``schedule`` asks for, or None without one."""
    if spec.schedule is None:
        return None
    return RecurringRun(
        display_name=recurring_run_name(namespace=namespace, name=name, uid=uid),
        description=f"generation {generation}",
        cron=kfp_cron(spec.schedule),
        parameters=parameters,
    )


def phase(state: str | None) -> TrainingPhase:
    if state in RUNNING_STATES:
        return TrainingPhase.RUNNING
    if state in SUCCEEDED_STATES:
        return TrainingPhase.SUCCEEDED
    if state in FAILED_STATES:
        return TrainingPhase.FAILED
    return TrainingPhase.PENDING


_SUCCEEDED = {
    TrainingPhase.PENDING: (ConditionStatus.UNKNOWN, "RunPending"),
    TrainingPhase.RUNNING: (ConditionStatus.UNKNOWN, "RunRunning"),
    TrainingPhase.SUCCEEDED: (ConditionStatus.TRUE, "RunSucceeded"),
    TrainingPhase.FAILED: (ConditionStatus.FALSE, "RunFailed"),
}


def _conditions(
    *,
    succeeded: ConditionStatus,
    failed: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
    previous: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Succeeded (Unknown while the run is under way) and Failed, both with the same reason and message."""
    return [
        condition(
            type=type,
            status=status,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
            previous=previous,
        )
        for type, status in (
            ("Succeeded", succeeded),
            ("Failed", ConditionStatus.TRUE if failed else ConditionStatus.FALSE),
        )
    ]


def status(
    *,
    state: str | None,
    run_id: str,
    generation: int | None,
    outcome: Outcome | None,
    previous_conditions: list[dict[str, Any]],
    now: str,
) -> dict[str, Any]:
    """The status of the current generation's run in KFP ``state``, with MLflow's ``outcome`` once it succeeded."""
    current = phase(state)
    succeeded, reason = _SUCCEEDED[current]
    found = outcome or Outcome()
    return {
        "phase": current.value,
        "runId": run_id,
        "mlflowRunId": found.mlflow_run_id,
        "modelVersion": found.model_version,
        "promoted": found.promoted,
        "conditions": _conditions(
            succeeded=succeeded,
            failed=current is TrainingPhase.FAILED,
            reason=reason,
            message=f"KFP run {run_id} is {state or 'PENDING'}",
            generation=generation,
            now=now,
            previous=previous_conditions,
        ),
        "observedGeneration": generation,
    }


def failed_status(
    *, problem: str, generation: int | None, previous_conditions: list[dict[str, Any]], now: str
) -> dict[str, Any]:
    """The status of a TrainingJob whose spec the apiserver admitted but the pipeline cannot take."""
    return {
        "phase": TrainingPhase.FAILED.value,
        "conditions": _conditions(
            succeeded=ConditionStatus.FALSE,
            failed=True,
            reason="InvalidSpec",
            message=problem,
            generation=generation,
            now=now,
            previous=previous_conditions,
        ),
        "observedGeneration": generation,
    }
