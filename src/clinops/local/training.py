"""Run a TrainingJob's KFP pipeline on this machine with kfp.local, each step a subprocess of this Python."""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinops import config
from clinops.errors import ClinopsError
from clinops.specs.training_job import TrainingJob
from clinops.training.tracking import configure_tracking

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_STARTED = re.compile(r"Executing task '?([\w-]+)'?")


class _ProgressLog(io.TextIOBase):
    """Keeps kfp.local's verbose step output in a log file and reports each step as it starts."""

    def __init__(self, path: Path, on_step: Callable[[str], None]) -> None:
        self._file = path.open("w")
        self._on_step = on_step

    def write(self, text: str) -> int:
        self._file.write(text)
        match = _TASK_STARTED.search(_ANSI.sub("", text))
        if match:
            self._on_step(match.group(1))
        return len(text)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        super().close()
        self._file.close()


@dataclass(frozen=True)
class TrainingOutcome:
    run_id: str
    version: str
    decision: dict[str, Any]
    best: dict[str, Any]
    test_metrics: dict[str, float]
    log: Path


def run_training_job(
    job: TrainingJob,
    *,
    tracking_uri: str | None = None,
    lake_root: str | None = None,
    on_step: Callable[[str], None] = lambda _: None,
) -> TrainingOutcome:
    import kfp.local
    from clinops_pipelines.training import training_pipeline
    from mlflow import MlflowClient

    tracking_uri = configure_tracking(tracking_uri)
    lake_root = lake_root or config.lake_root()
    root = (config.data_dir() / "pipelines").resolve()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / f"{job.metadata.name}.log"
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=False)
    progress = _ProgressLog(log_path, on_step)
    with redirect_stdout(progress), warnings.catch_warnings():
        # kfp.local warns that the platform image is not used: here this Python is the platform image.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
        task = training_pipeline(
            spec_json=job.spec.model_dump_json(by_alias=True),
            job_name=job.metadata.name,
            tracking_uri=tracking_uri,
            lake_root=lake_root,
        )
    progress.close()
    output = task.outputs.get("Output") if isinstance(task.outputs, dict) else None
    if not output:
        raise ClinopsError(f"training pipeline failed: {_failure_line(log_path)} (full log: {log_path})")
    decision = json.loads(output)
    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = str(decision["run_id"])
    run = client.get_run(run_id)
    best = {k.removeprefix("best."): v for k, v in run.data.params.items() if k.startswith("best.")}
    test_metrics = {k.removeprefix("test."): v for k, v in run.data.metrics.items() if k.startswith("test.")}
    return TrainingOutcome(run_id, decision["version"], decision, best, test_metrics, log_path)


def _failure_line(log_path: Path) -> str:
    """The last error a step raised, as one line (steps raise ClinopsError subclasses with readable messages)."""
    lines = [_ANSI.sub("", line).strip() for line in log_path.read_text().splitlines()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b.*?:", line)]
    return errors[-1] if errors else "see the log"
