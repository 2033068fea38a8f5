"""`clinops flink run …`: start a stream-env Flink job (.venv-flink) from the core env as a subprocess."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from clinops.config import data_dir, lake_root
from clinops.config import tracking_uri as configured_tracking_uri
from clinops.errors import ClinopsError
from clinops.monitoring.reference import ProfileError, reference_of, registered_version
from clinops.streaming.flink.cache import JARS_ENV, jar_cache, jars

PYTHON_ENV = "CLINOPS_FLINK_PYTHON"
STREAM_ENV_DIR = ".venv-flink"
JOB_MODULE = "clinops.streaming.flink"

app = typer.Typer(help="PyFlink jobs on a local mini-cluster, run in the stream env.", no_args_is_help=True)
run_app = typer.Typer(help="Run a Flink job until it ends (files, bounded Kafka) or is interrupted.")
app.add_typer(run_app, name="run")
console = Console(stderr=True)


class FlinkLaunchError(ClinopsError):
    """The stream env, its Flink jars or a Java runtime is missing."""


def stream_python() -> Path:
    """CLINOPS_FLINK_PYTHON, else the .venv-flink next to the running env, else one in the working directory."""
    configured = os.environ.get(PYTHON_ENV)
    candidates = [Path(configured)] if configured else []
    candidates += [Path(sys.prefix).parent / STREAM_ENV_DIR / "bin" / "python", Path(STREAM_ENV_DIR) / "bin" / "python"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.absolute()
    raise FlinkLaunchError(f"no stream env python at {candidates[0]}: run `make stream-env` (or set {PYTHON_ENV})")


def flink_version(python: Path) -> str:
    """The apache-flink version installed in the stream env, read from its metadata without starting it."""
    prefix = python.parent.parent
    for site_packages in sorted(prefix.glob("lib/python*/site-packages")):
        for dist in importlib.metadata.distributions(path=[str(site_packages)]):
            if dist.metadata["Name"] == "apache-flink":
                return dist.version
    raise FlinkLaunchError(f"apache-flink is not installed in {prefix}: run `make stream-env`")


def java_home() -> str:
    """JAVA_HOME when it holds a java, else the installation of the java on PATH (PyFlink starts a JVM)."""
    configured = os.environ.get("JAVA_HOME")
    if configured and (Path(configured) / "bin" / "java").is_file():
        return configured
    java = shutil.which("java")
    if java is None:
        raise FlinkLaunchError("no Java runtime: Flink needs Java 17+ on PATH or in JAVA_HOME")
    return str(Path(java).resolve().parent.parent)


def job_environment(python: Path) -> dict[str, str]:
    """The environment of a job process: Java, and the jar cache for the stream env's Flink version."""
    cache = jar_cache(flink_version(python))
    if not jars(cache):
        raise FlinkLaunchError(f"no Flink connector jars in {cache / 'jars'}: run `make flink-jars`")
    return {**os.environ, "JAVA_HOME": java_home(), JARS_ENV: str(cache)}


def job_command(python: Path, job: str, args: list[str]) -> list[str]:
    return [str(python), "-m", JOB_MODULE, job, *args]


class Source(StrEnum):
    FILES = "files"
    KAFKA = "kafka"


@run_app.command("bronze-to-silver")
def bronze_to_silver(
    lake: Annotated[str, typer.Option(help="Lake root: a directory or s3://bucket/prefix (env CLINOPS_LAKE).")] = (
        lake_root()
    ),
    source: Annotated[Source, typer.Option(help="Bronze objects in the lake, or the Kafka topics.")] = Source.FILES,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers, host:port.")] = None,
    bounded: Annotated[bool, typer.Option(help="Kafka: stop at the offsets current at start.")] = False,
    parallelism: Annotated[int, typer.Option(min=1, help="Parallelism of every operator.")] = 2,
    checkpoint_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between checkpoints.")] = 10.0,
    entity: Annotated[list[str] | None, typer.Option(help="Only this entity (repeatable).")] = None,
) -> None:
    """Validate bronze into silver Parquet and quarantine with the Flink job (same rules as `clinops lake`)."""
    if source is Source.KAFKA and not bootstrap:
        console.print("error: --source kafka needs --bootstrap host:port", markup=False, highlight=False)
        raise typer.Exit(2)
    args = ["--lake", lake, "--source", source.value, "--parallelism", str(parallelism)]
    args += ["--checkpoint-interval", str(checkpoint_interval)]
    if bootstrap:
        args += ["--bootstrap", bootstrap]
    if bounded:
        args.append("--bounded")
    for name in entity or []:
        args += ["--entity", name]
    try:
        python = stream_python()
        command = job_command(python, "bronze-to-silver", args)
        env = job_environment(python)
    except FlinkLaunchError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    # The job's own output (its JSON summary, its errors) goes straight to this terminal.
    code = subprocess.run(command, env=env, check=False).returncode
    if code != 0:
        raise typer.Exit(code)


# --- drift monitor ---------------------------------------------------------------------------------------------


def monitor_profile(model_uri: str, tracking_uri: str, target: Path) -> tuple[str, str]:
    """The reference profile of the version ``model_uri`` means now, written to ``target``: its name and version."""
    try:
        name, version = registered_version(model_uri, tracking_uri)
        reference = reference_of(name, version, tracking_uri)
    except ProfileError as exc:
        raise FlinkLaunchError(str(exc)) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(reference.profile_json())
    return name, version


@run_app.command("drift")
def drift(
    model: Annotated[str, typer.Option(help="Monitored model: models:/<name>@<alias> or models:/<name>/<version>.")],
    lake: Annotated[str, typer.Option(help="Lake root: a directory or s3://bucket/prefix (env CLINOPS_LAKE).")] = (
        lake_root()
    ),
    source: Annotated[Source, typer.Option(help="The prediction log in the lake, or the Kafka topic.")] = Source.FILES,
    sink: Annotated[Source | None, typer.Option(help="Drift results to the lake or Kafka (default: source).")] = None,
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers, host:port.")] = None,
    bounded: Annotated[bool, typer.Option(help="Kafka: stop at the offsets current at start.")] = False,
    deployment: Annotated[str | None, typer.Option(help="Name of the results (default: the model name).")] = None,
    window_seconds: Annotated[int, typer.Option(min=1, help="Tumbling event-time window size.")] = 600,
    lateness: Annotated[int, typer.Option(min=0, help="Kafka: seconds an event may trail the newest one.")] = 300,
    numerical_test: Annotated[str, typer.Option(help="ks, psi, wasserstein or jsd.")] = "ks",
    categorical_test: Annotated[str, typer.Option(help="chi2, psi or jsd.")] = "chi2",
    threshold: Annotated[float | None, typer.Option(help="p-value or distance limit (default: each test's).")] = None,
    drift_share: Annotated[float, typer.Option(help="Share of drifted features that flags a window.")] = 0.5,
    all_versions: Annotated[bool, typer.Option(help="Monitor every version's predictions, not only this one's.")] = (
        False
    ),
    parallelism: Annotated[int, typer.Option(min=1, help="Parallelism of every operator.")] = 2,
    checkpoint_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between checkpoints.")] = 10.0,
    metrics_port: Annotated[str | None, typer.Option(help="Prometheus port or range (e.g. 9249-9259).")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (env MLFLOW_TRACKING_URI).")] = None,
) -> None:
    """Per-window drift of a deployment's prediction log against its model's reference profile."""
    if Source.KAFKA in (source, sink) and not bootstrap:
        console.print("error: a Kafka source or sink needs --bootstrap host:port", markup=False, highlight=False)
        raise typer.Exit(2)
    try:
        python = stream_python()
        env = job_environment(python)
        uri = tracking_uri or configured_tracking_uri()
        target = data_dir() / "flink" / "profiles" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', model)}.json"
        name, version = monitor_profile(model, uri, target)
    except FlinkLaunchError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    args = ["--profile", str(target.resolve()), "--deployment", deployment or name, "--model", name]
    if not all_versions:
        args += ["--model-version", version]
    args += ["--source", source.value, "--window-seconds", str(window_seconds), "--lateness", str(lateness)]
    args += ["--numerical-test", numerical_test, "--categorical-test", categorical_test]
    args += ["--drift-share", str(drift_share), "--parallelism", str(parallelism)]
    args += ["--checkpoint-interval", str(checkpoint_interval)]
    if Source.FILES in (source, sink or source):
        args += ["--lake", lake]
    for flag, value in [("--sink", sink.value if sink else None), ("--bootstrap", bootstrap)]:
        if value:
            args += [flag, value]
    if threshold is not None:
        args += ["--threshold", str(threshold)]
    if metrics_port:
        args += ["--metrics-port", metrics_port]
    if bounded:
        args.append("--bounded")
    console.print(f"Monitoring models:/{name}/{version} with its reference profile {target}", highlight=False)
    code = subprocess.run(job_command(python, "drift", args), env=env, check=False).returncode
    if code != 0:
        raise typer.Exit(code)
