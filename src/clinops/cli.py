"""The clinops command line: one readable error line and a non-zero exit for bad input, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from clinops.config import lake_root
from clinops.errors import ClinopsError
from clinops.stack.cli import app as stack_app
from clinops.streaming.flink_launcher import app as flink_app

if TYPE_CHECKING:
    from clinops.data.generator import GeneratorConfig
    from clinops.lake.store import Lake

app = typer.Typer(
    name="clinops",
    help="clinops: clinical MLOps on Kubernetes, or on this machine with no cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
lake_app = typer.Typer(help="Lake layer jobs.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")
app.add_typer(stack_app, name="stack")
app.add_typer(flink_app, name="flink")

console = Console(stderr=True)
out = Console()

P = ParamSpec("P")


def _readable_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Expected failures end the command with one line on stderr and exit code 1 (2 for invalid input)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            console.print(f"error: {where}: {first['msg']}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (ClinopsError, OSError) as exc:
            console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return run


DEFAULT_LAKE = lake_root()
LakeOption = Annotated[
    str, typer.Option("--lake", help="Lake root: a directory or s3://bucket/prefix (env CLINOPS_LAKE).")
]
PatientsOption = Annotated[int, typer.Option(min=1, max=2_000_000, help="Number of patients.")]
SeedOption = Annotated[int, typer.Option(min=0, help="Seed of every random draw.")]
CovariateOption = Annotated[
    float, typer.Option(min=0.0, max=3.0, help="Covariate shift: older, sicker population (0 = none).")
]
RateOption = Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Prior shift: target readmission rate.")]
ConceptOption = Annotated[float, typer.Option(min=0.0, max=1.0, help="Concept shift of the risk function (0-1).")]


# Heavy imports (pandas, pyarrow) happen inside commands so `clinops --help` answers at once.
def _lake(root: str) -> Lake:
    from clinops.lake.store import Lake

    return Lake(root)


def _config(
    patients: int,
    seed: int,
    covariate_shift: float,
    readmission_rate: float | None,
    concept_shift: float,
    days: int,
) -> GeneratorConfig:
    from clinops.data.generator import DriftKnobs, GeneratorConfig

    return GeneratorConfig(
        patients=patients,
        seed=seed,
        days=days,
        drift=DriftKnobs(
            covariate_shift=covariate_shift, readmission_rate=readmission_rate, concept_shift=concept_shift
        ),
    )


@app.command()
@_readable_errors
def generate(
    lake: LakeOption = DEFAULT_LAKE,
    patients: PatientsOption = 2000,
    seed: SeedOption = 7,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Admission window in days.")] = 90,
    covariate_shift: CovariateOption = 0.0,
    readmission_rate: RateOption = None,
    concept_shift: ConceptOption = 0.0,
    stdout: Annotated[bool, typer.Option("--stdout", help="Write raw events as JSON lines to stdout.")] = False,
) -> None:
    """Generate a synthetic cohort and its event streams (to the lake's bronze layer, or stdout)."""
    from clinops.data.emit import emit_jsonl, emit_to_lake
    from clinops.data.generator import generate as generate_cohort

    config = _config(patients, seed, covariate_shift, readmission_rate, concept_shift, days)
    with console.status("Generating cohort"):
        cohort = generate_cohort(config)
    if stdout:
        emit_jsonl(cohort, sys.stdout)
        return
    target = _lake(lake)
    with console.status("Writing bronze") as status:
        report = emit_to_lake(cohort, target, progress=lambda topic, n: status.update(f"Wrote {n} {topic}"))
    table = Table("topic", "records", title=f"bronze in {target.uri()}")
    for topic, count in report.records.items():
        table.add_row(topic, f"{count:,}")
    out.print(table)
    out.print(
        f"{len(cohort.patients):,} patients, {len(cohort.encounters):,} encounters, "
        f"{report.bronze_objects:,} bronze objects"
    )


@lake_app.command("bronze-to-silver")
@_readable_errors
def bronze_to_silver(lake: LakeOption = DEFAULT_LAKE) -> None:
    """Validate and standardise bronze into silver Parquet; invalid records go to quarantine with reasons."""
    from clinops.lake.silver import bronze_to_silver as run
    from clinops.summary import reasons_table

    with console.status("bronze → silver") as status:
        report = run(_lake(lake), progress=lambda entity: status.update(f"Validating {entity}"))
    table = Table("entity", "bronze records", "silver", "quarantined", "replays dropped", title="bronze → silver")
    for entity, r in report.entities.items():
        table.add_row(entity, f"{r.records:,}", f"{r.valid:,}", f"{r.quarantined:,}", f"{r.replayed:,}")
    out.print(table)
    out.print(reasons_table(report.reason_totals(), limit=12))


@app.command()
@_readable_errors
def features(lake: LakeOption = DEFAULT_LAKE) -> None:
    """Build the gold per-encounter feature table from silver."""
    from clinops.features.offline import build_gold

    target = _lake(lake)
    with console.status("silver → gold"):
        gold = build_gold(target)
    out.print(f"gold/encounters: {len(gold):,} encounters × {gold.shape[1]} columns in {target.uri()}")


@app.command("load-csv")
@_readable_errors
def load_csv(
    path: Annotated[Path, typer.Argument(help="CSV file with one row per encounter.")],
    mapping: Annotated[str, typer.Option(help="Built-in mapping name or a YAML mapping file.")] = "uci-diabetes",
    table: Annotated[str, typer.Option(help="Gold table to write.")] = "uci_diabetes",
    lake: LakeOption = DEFAULT_LAKE,
) -> None:
    """Load a real tabular dataset into a gold table through a schema mapping."""
    from clinops.data.tabular import load_csv as run
    from clinops.data.tabular import load_mapping
    from clinops.summary import reasons_table

    result = run(path, load_mapping(mapping), _lake(lake), table=table)
    out.print(
        f"gold/{result.table}: {result.loaded:,} of {result.rows:,} rows loaded, {result.quarantined:,} quarantined"
    )
    if result.reasons:
        out.print(reasons_table(result.reasons, limit=12))


@app.command()
@_readable_errors
def train(
    file: Annotated[Path, typer.Option("-f", "--file", help="TrainingJob YAML.")],
    lake: LakeOption = DEFAULT_LAKE,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or the embedded store).")
    ] = None,
) -> None:
    """Run a TrainingJob's pipeline on this machine: tune, evaluate, register and apply the promotion policy."""
    from clinops.local.training import run_training_job
    from clinops.specs.common import load_resource
    from clinops.specs.training_job import TrainingJob
    from clinops.summary import training_table

    job = load_resource(TrainingJob, file)
    with console.status(f"Training {job.metadata.name}") as status:
        outcome = run_training_job(
            job, tracking_uri=tracking_uri, lake_root=lake, on_step=lambda step: status.update(f"Step {step}")
        )
    out.print(training_table(outcome, f"TrainingJob {job.metadata.name} → {job.spec.model.name}"))


@app.command()
@_readable_errors
def demo(
    lake: LakeOption = DEFAULT_LAKE,
    patients: PatientsOption = 3000,
    seed: SeedOption = 7,
    training_job: Annotated[Path, typer.Option(help="TrainingJob YAML run on the gold table.")] = Path(
        "manifests/samples/training-job.yaml"
    ),
    train: Annotated[bool, typer.Option(help="Run the TrainingJob after building gold.")] = True,
) -> None:
    """Run the closed loop on this machine: data → bronze → silver → gold → tuned, registered champion."""
    from clinops.demo import run_demo
    from clinops.specs.common import load_resource
    from clinops.specs.training_job import TrainingJob
    from clinops.summary import render_summary

    target = _lake(lake)
    job = load_resource(TrainingJob, training_job) if train else None
    with console.status("Starting") as status:
        config = _config(patients, seed, 0.0, None, 0.0, 90)
        result = run_demo(target, config, training_job=job, stage=status.update)
    render_summary(out, result, target)


def _version_ref(text: str, what: str) -> dict[str, str | int]:
    """``champion`` or ``@champion`` is an alias, ``3`` a version."""
    text = text.removeprefix("@")
    if text.isdigit():
        return {"version": int(text)}
    if not text:
        raise ClinopsError(f"{what}: expected an alias or a version number")
    return {"alias": text}


def parse_model_uri(uri: str) -> dict[str, str | int]:
    """``models:/name@alias``, ``models:/name/3``, or the same without ``models:/``."""
    body = uri.removeprefix("models:/")
    name, sep, ref = body.partition("@")
    if not sep:
        name, sep, ref = body.rpartition("/")
        if not sep:
            raise ClinopsError(f"model {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")
    return {"name": name, **_version_ref(ref, f"model {uri!r}")}


@app.command()
@_readable_errors
def serve(
    model: Annotated[
        str, typer.Argument(help="models:/<name>@<alias> or models:/<name>/<version> (ignored with -f).")
    ] = "models:/readmission-risk@champion",
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="ModelDeployment YAML; re-read while serving.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8080,
    canary: Annotated[str | None, typer.Option(help="Canary alias or version, e.g. challenger or 4.")] = None,
    canary_percent: Annotated[float, typer.Option(help="Share of sticky keys the canary answers.")] = 10.0,
    sticky_key: Annotated[str, typer.Option(help="Request field that keeps a patient on one variant.")] = "patient_id",
    reload_interval: Annotated[float, typer.Option(help="Seconds between registry polls.")] = 10.0,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or the embedded store).")
    ] = None,
    lake: LakeOption = DEFAULT_LAKE,
) -> None:
    """Serve a registered model on this machine: /predict, /v2 (Open Inference Protocol), /metrics, /docs."""
    from clinops.config import tracking_uri as default_tracking_uri
    from clinops.serving.server import serve as run_server
    from clinops.serving.settings import ServerSettings, deployment_from_spec, load_deployment_file
    from clinops.specs.model_deployment import ModelDeploymentSpec

    if file is not None:
        deployment, _ = load_deployment_file(file)
    else:
        spec = ModelDeploymentSpec.model_validate(
            {
                "model": parse_model_uri(model),
                "canary": None
                if canary is None
                else {
                    **_version_ref(canary, "--canary"),
                    "trafficPercent": canary_percent,
                    "stickyKey": sticky_key,
                },
                "reloadIntervalSeconds": reload_interval,
            }
        )
        deployment = deployment_from_spec(str(spec.model.name).lower().replace("_", "-"), spec)
    settings = ServerSettings(
        deployment=deployment,
        tracking_uri=tracking_uri or default_tracking_uri(),
        lake_root=lake,
        deployment_file=file,
    )
    console.print(f"Serving {deployment.spec.model.uri} on http://{host}:{port} (docs at /docs)")
    run_server(settings, host=host, port=port)


BootstrapOption = Annotated[
    str,
    typer.Option(
        "--bootstrap", envvar="CLINOPS_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers (env CLINOPS_KAFKA_BOOTSTRAP)."
    ),
]


@app.command()
@_readable_errors
def produce(
    bootstrap: BootstrapOption = "127.0.0.1:9092",
    patients: PatientsOption = 2000,
    seed: SeedOption = 7,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Admission window in days.")] = 90,
    covariate_shift: CovariateOption = 0.0,
    rate: Annotated[
        float | None, typer.Option(min=1.0, help="Events per second (default: as fast as Kafka takes them).")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(min=0.1, help="Seconds to keep producing, cohort after cohort (default: one cohort)."),
    ] = None,
) -> None:
    """Send a synthetic cohort's events to Kafka: idempotent, acks=all, keyed by patient id."""
    from clinops.streaming.producer import produce_events

    config = _config(patients, seed, covariate_shift, None, 0.0, days)
    with console.status("Producing") as status:
        report = produce_events(
            bootstrap,
            config,
            rate=rate,
            duration=duration,
            progress=lambda r: status.update(f"Produced {r.produced:,}, acknowledged {r.delivered_total:,}"),
        )
    table = Table("topic", "delivered", "failed", title=f"Kafka {bootstrap}")
    for topic in sorted(set(report.delivered) | set(report.failed)):
        table.add_row(topic, f"{report.delivered[topic]:,}", f"{report.failed[topic]:,}")
    out.print(table)
    out.print(f"{report.delivered_total:,} events acknowledged in {report.seconds:.1f}s ({report.rate:,.0f}/s)")
    if report.failed_total:
        raise ClinopsError(f"{report.failed_total:,} events were not delivered: {report.first_error}")


@app.command()
@_readable_errors
def ingest(
    bootstrap: BootstrapOption = "127.0.0.1:9092",
    lake: LakeOption = DEFAULT_LAKE,
    topics: Annotated[
        list[str] | None, typer.Option("--topic", help="Topic to ingest (repeatable; default: the four event topics).")
    ] = None,
    group: Annotated[str, typer.Option(help="Consumer group.")] = "clinops-bronze",
    instance_id: Annotated[
        str | None,
        typer.Option(envvar="CLINOPS_INGEST_INSTANCE_ID", help="Static group member id, stable across restarts."),
    ] = None,
    batch_records: Annotated[int, typer.Option(min=1, help="Write a partition's batch at this many records…")] = 5000,
    batch_seconds: Annotated[
        float, typer.Option(min=0.01, help="…or when its first record is this many seconds old.")
    ] = 5.0,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    metrics_address: Annotated[
        str, typer.Option(help="Address of the metrics endpoint (0.0.0.0 in a pod, so Prometheus can scrape it).")
    ] = "127.0.0.1",
    exit_at_end: Annotated[
        bool, typer.Option("--exit-at-end", help="Stop once every partition is written to its end.")
    ] = False,
) -> None:
    """Consume the event topics into bronze objects; offsets are committed only after their objects are written."""
    import signal
    import threading

    from clinops.streaming.ingest import EVENT_TOPICS, BronzeIngestor, IngestSettings

    settings = IngestSettings(
        topics=tuple(topics) if topics else EVENT_TOPICS,
        group=group,
        batch_records=batch_records,
        batch_seconds=batch_seconds,
        instance_id=instance_id,
    )
    ingestor = BronzeIngestor(bootstrap, _lake(lake), settings)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_address, registry=ingestor.metrics.registry)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print(f"Ingesting {', '.join(settings.topics)} from {bootstrap} into {lake}")
    report = ingestor.run(stop=stop, exit_at_end=exit_at_end)
    out.print(
        f"{report.records:,} records in {report.objects:,} bronze objects, {report.quarantined:,} quarantined, "
        f"{report.rewritten_batches:,} uncommitted batches rewritten"
    )


def main() -> None:
    app()
