"""The bronze → silver PyFlink job: Flink SQL built from the shared rules, one Java function for timestamps."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from pyflink.common import Configuration
from pyflink.table import EnvironmentSettings, TableEnvironment

from clinops.config import data_dir
from clinops.data.schemas import TOPIC_BY_EVENT_TYPE, EventType
from clinops.lake.layout import QUARANTINE, bronze_prefix
from clinops.lake.store import Lake
from clinops.streaming.flink import cache
from clinops.streaming.flink.silver_sql import JAVA_FUNCTIONS, JobSpec, SourceKind, Statements, entity, statements

log = logging.getLogger(__name__)


class FlinkJobError(RuntimeError):
    """The job cannot start: its jars, its functions' classes or its lake are missing."""


def flink_version() -> str:
    return importlib.metadata.version("apache-flink")


def jar_cache(version: str | None = None) -> Path:
    """The jar cache of a Flink version, by default the one installed in this env."""
    return cache.jar_cache(version or flink_version())


def _jar_urls(jars_dir: Path) -> list[str]:
    found = cache.jars(jars_dir)
    if not found:
        raise FlinkJobError(f"no Flink connector jars in {jars_dir / 'jars'}: run `make flink-jars`")
    return [jar.resolve().as_uri() for jar in found]


def _s3_options() -> dict[str, str]:
    """The lake's S3 settings (CLINOPS_S3_ENDPOINT, AWS_*) as the s3-fs-hadoop plugin reads them."""
    options: dict[str, str] = {}
    endpoint = os.environ.get("CLINOPS_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        options["s3.endpoint"] = f"{parsed.scheme}://{parsed.netloc}"
        options["s3.path.style.access"] = "true"
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        options["s3.access-key"] = os.environ["AWS_ACCESS_KEY_ID"]
        options["s3.secret-key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if os.environ.get("AWS_REGION"):
        options["s3.region"] = os.environ["AWS_REGION"]
    return options


def require_classes(jars_dir: Path, classes: Iterable[str]) -> None:
    """Fail before the JVM starts if a Java function's class is in none of the cached jars.

    Otherwise the planner reports it deep inside a validation error, after the cluster has started.
    """
    missing = cache.missing_classes(jars_dir, classes)
    if missing:
        raise FlinkJobError(
            f"no {cache.FUNCTIONS_JAR} in {jars_dir / 'jars'} holding {', '.join(missing)} (scripts/flink-udf): "
            "run `make flink-jars`"
        )


@dataclass(frozen=True)
class RunOptions:
    lake: str
    source: SourceKind = SourceKind.FILES
    bootstrap: str | None = None
    group_id: str = "clinops-bronze-to-silver"
    bounded: bool = False
    parallelism: int = 2
    checkpoint_interval_s: float = 10.0
    lateness_s: int = 300
    kinds: tuple[EventType, ...] = tuple(EventType)
    extra_config: dict[str, str] = field(default_factory=dict)
    explain: bool = False
    # The local mini-cluster's JVM options for a run that ends (BOUNDED_JVM_OPTIONS); ``run`` sets it for one.
    bounded_jvm: bool = False


def lake_uri(lake: Lake) -> str:
    return Path(lake.path("")).as_uri() if lake.is_local else lake.uri()


# A local mini-cluster's JVM runs one job. For a run that ends within minutes, C2 compiling the planner's generated
# operators (and the runtime around them) took as much CPU as the operators themselves, on cores they share; C1's
# code is slower but compiled at a fraction of the cost. The run's throughput matters, not its pauses: parallel GC.
BOUNDED_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseParallelGC")


def _jvm_args(given: list[str], wanted: Iterable[str]) -> list[str]:
    """``given`` plus each wanted option whose setting it does not make already (a second collector would not start)."""

    def setting(option: str) -> str:
        return "gc" if option.startswith("-XX:+Use") and option.endswith("GC") else option.split("=")[0]

    taken = {setting(option) for option in given}
    return [*given, *(option for option in wanted if setting(option) not in taken)]


def _prepare_jvm(jars_dir: Path, bounded: bool = False) -> None:
    """Environment the PyFlink gateway JVM reads at launch: plugins, log file and log configuration; for a run
    that ends, ``BOUNDED_JVM_OPTIONS`` added to any JVM_ARGS already set."""
    plugins = jars_dir / "plugins"
    if plugins.is_dir():
        # Filesystem plugins (s3://) load from here when the local mini-cluster starts.
        os.environ.setdefault("FLINK_PLUGINS_DIR", str(plugins))
    # The default log file lives inside the installed package and is shared by every run.
    log_dir = Path(os.environ.get("FLINK_LOG_DIR") or data_dir() / "flink" / "log").resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FLINK_LOG_DIR"] = str(log_dir)
    os.environ.setdefault("LOG4J_PROPERTIES", str(Path(__file__).with_name("log4j.properties")))
    if bounded:
        os.environ["JVM_ARGS"] = " ".join(_jvm_args(os.environ.get("JVM_ARGS", "").split(), BOUNDED_JVM_OPTIONS))


def _checkpoint_dir(options: RunOptions) -> str:
    """Beside the lake (hidden from its readers), else under the data dir.

    Not the JobManager's memory: a backfill's windows hold every row until the input ends, far more than it takes.
    """
    if options.lake:
        return f"{lake_uri(Lake(options.lake))}/_flink/checkpoints"
    return (data_dir() / "flink" / "checkpoints").resolve().as_uri()


def table_environment(options: RunOptions, jars_dir: Path) -> TableEnvironment:
    _prepare_jvm(jars_dir, bounded=options.bounded_jvm)
    config = Configuration()
    settings = {
        "pipeline.jars": ";".join(_jar_urls(jars_dir)),
        "pipeline.name": "clinops bronze-to-silver",
        "parallelism.default": str(options.parallelism),
        "table.local-time-zone": "UTC",
        # Chained SQL operators hand rows on without copying them (the planner's operators allow it).
        "pipeline.object-reuse": "true",
        # Files become visible in silver only when a checkpoint commits them; a bounded run ends with one.
        "execution.checkpointing.interval": f"{int(options.checkpoint_interval_s * 1000)}ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": _checkpoint_dir(options),
        # A failure that repeats is a bug, not weather: give up after a few attempts instead of looping.
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "1 s",
        # A Kafka partition that falls silent must not hold every window back.
        "table.exec.source.idle-timeout": "30 s",
        **_s3_options(),
        **options.extra_config,
    }
    for key, value in settings.items():
        config.set_string(key, value)
    env_settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    return TableEnvironment.create(env_settings)


def _existing(lake: Lake, kinds: Iterable[EventType]) -> list[str]:
    """Silver and validation quarantine a file backfill replaces (ingest quarantine belongs to bronze)."""
    keys: list[str] = []
    for kind in kinds:
        name = entity(kind)
        keys += lake.keys(f"silver/{name}/")
        keys += [k for k in lake.keys(f"{QUARANTINE}/{name}/") if not k.endswith(".ingest.jsonl")]
    return keys


@dataclass
class RunResult:
    job_id: str
    seconds: float
    replaced: int
    # Time the job ran on the cluster, without start-up, planning and submission.
    runtime_s: float = 0.0


def job_statements(options: RunOptions) -> Statements:
    spec = JobSpec(
        lake_uri=lake_uri(Lake(options.lake)),
        source=options.source,
        bootstrap=options.bootstrap,
        group_id=options.group_id,
        bounded=options.bounded,
        lateness_s=options.lateness_s,
        kinds=options.kinds,
    )
    return statements(spec)


def _with_bronze(lake: Lake, kinds: Iterable[EventType]) -> tuple[EventType, ...]:
    """The event types that have bronze objects (a file source over a missing folder fails the whole job)."""
    found = tuple(kind for kind in kinds if lake.keys(bronze_prefix(TOPIC_BY_EVENT_TYPE[kind]), suffix=".jsonl"))
    if not found:
        raise FlinkJobError(f"no bronze objects under {lake.uri('bronze')}: emit or ingest events first")
    for kind in set(kinds) - set(found):
        log.info("Skipped %s: no bronze objects", entity(kind))
    return found


def run(options: RunOptions) -> RunResult:
    """Run the job to its end (files, or Kafka with ``bounded``) or until cancelled (Kafka)."""
    lake = Lake(options.lake)
    jars_dir = jar_cache()
    backfill = options.source is SourceKind.FILES
    if backfill:
        options = replace(options, kinds=_with_bronze(lake, options.kinds))
    if backfill or options.bounded:
        options = replace(options, bounded_jvm=True)
    planned = job_statements(options)
    stale = _existing(lake, options.kinds) if backfill else []
    require_classes(jars_dir, JAVA_FUNCTIONS.values())
    t_env = table_environment(options, jars_dir)
    for table in planned.tables:
        t_env.execute_sql(table)
    # Views registered as tables, not as SQL text: each is validated once, not again inside every later view.
    for name, query in planned.views:
        t_env.create_temporary_view(name, t_env.sql_query(query))
    statement_set = t_env.create_statement_set()
    for insert in planned.inserts:
        statement_set.add_insert_sql(insert)
    if options.explain:
        print(statement_set.explain())
        return RunResult(job_id="", seconds=0.0, replaced=0)
    started = time.perf_counter()
    result = statement_set.execute()
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client is not None else ""
    log.info("Submitted Flink job %s", job_id)
    result.wait()
    seconds = time.perf_counter() - started
    runtime_s = client.get_job_execution_result().result().get_net_runtime() / 1000 if client is not None else 0.0
    # A backfill rebuilds silver: what was there before is removed only once the new files are committed.
    for key in stale:
        lake.fs.delete_file(lake.path(key))
    return RunResult(job_id=job_id, seconds=seconds, replaced=len(stale), runtime_s=runtime_s)
