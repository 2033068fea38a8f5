"""The drift monitor PyFlink job: bins counted per window by a Java aggregate, one Python report per window."""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from clinops.lake.layout import bronze_prefix
from clinops.lake.store import Lake
from clinops.monitoring.bins import bin_index_rules
from clinops.monitoring.drift import DriftResult, drift_report
from clinops.streaming.flink.drift_sql import (
    BINS_UDF,
    DRIFT_REPORT_UDF,
    JAVA_FUNCTIONS,
    RULES_PARAMETER,
    Binning,
    DriftOptions,
    DriftSpec,
    category_bins,
    cell_offsets,
    counts_from_cells,
    encode_rules,
    statements,
    window_bounds,
)
from clinops.streaming.flink.silver_job import (
    FlinkJobError,
    RunOptions,
    jar_cache,
    lake_uri,
    require_classes,
    table_environment,
)
from clinops.streaming.flink.silver_sql import SourceKind

log = logging.getLogger(__name__)

PROMETHEUS_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
# Python gauges reach Flink as Beam int64 gauges: fractions are exported in millionths.
PPM = 1_000_000
GLOBAL_JOB_PARAMETERS = "pipeline.global-job-parameters"


def load_profile(location: str) -> dict[str, Any]:
    """The reference profile JSON from a path, a file:// URI or s3://bucket/key."""
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        data = Lake(f"s3://{bucket}").read_bytes(key)
    else:
        data = Path(location.removeprefix("file://")).expanduser().read_bytes()
    profile: dict[str, Any] = json.loads(data)
    return profile


def restrict_profile(profile: Mapping[str, Any], features: Sequence[str] | None) -> dict[str, Any]:
    """The profile over ``features`` only, in their order (default: every profiled feature)."""
    if features is None:
        return dict(profile)
    unknown = [name for name in features if name not in profile["features"]]
    if unknown:
        raise ValueError(f"features not in the reference profile: {', '.join(unknown)}")
    return {**profile, "features": {name: profile["features"][name] for name in features}}


@dataclass(frozen=True)
class ReportSettings:
    """What the once-per-window aggregate needs; pickled into the Python worker with it."""

    profile: dict[str, Any]
    deployment: str
    window_seconds: int
    numerical_test: str
    categorical_test: str
    threshold: float | None
    drift_share: float


def window_record(result: DriftResult, deployment: str) -> dict[str, Any]:
    """The ``drift-results`` record: the report's record, named by the deployment it monitors."""
    return {"deployment": deployment, **result.to_record()}


class DriftReport(ScalarFunction):  # type: ignore[misc]
    """One window's counts of all cells (the Java aggregate's row) to the drift report as a JSON record.

    Flink calls it once per window, so Python work grows with the windows and the profile's cells, never with the
    events.
    """

    def __init__(self, settings: ReportSettings) -> None:
        self.settings = settings
        self.rules = bin_index_rules(settings.profile)
        self.last: DriftResult | None = None
        self.windows = 0

    def open(self, function_context: FunctionContext) -> None:
        group = function_context.get_metric_group().add_group("drift")
        group.gauge("windows", lambda: self.windows)
        group.gauge("rows", lambda: self.last.rows if self.last else 0)
        group.gauge("drifted", lambda: int(self.last.drifted) if self.last else 0)
        group.gauge("share_ppm", lambda: round(self.last.drift_share * PPM) if self.last else 0)
        group.gauge("drifted_features", lambda: len(self.last.drifted_features) if self.last else 0)
        group.gauge("window_end_seconds", lambda: self._window_end_s())
        for name in self.rules:
            feature = group.add_group("feature", name)
            feature.gauge("statistic_ppm", self._feature_gauge(name, "statistic"))
            feature.gauge("p_value_ppm", self._feature_gauge(name, "p_value"))
            feature.gauge("missing_rate_ppm", self._feature_gauge(name, "missing_rate"))
            feature.gauge("drifted", self._feature_gauge(name, "drifted"))

    def _window_end_s(self) -> int:
        if self.last is None or self.last.window_end is None:
            return 0
        return int(pd.Timestamp(self.last.window_end).timestamp())

    def _feature_gauge(self, name: str, attribute: str) -> Any:
        def value() -> int:
            if self.last is None:
                return 0
            raw = getattr(self.last.features[name], attribute)
            if isinstance(raw, bool):
                return int(raw)
            if raw is None or not math.isfinite(raw):
                return -1  # untested, or chi² over a category the reference never saw
            return round(float(raw) * PPM)

        return value

    def eval(self, start_s: int, counts: list[int]) -> str:
        settings = self.settings
        start, end = window_bounds(int(start_s), settings.window_seconds)
        result = drift_report(
            counts_from_cells(counts, self.rules),
            settings.profile,
            numerical_test=settings.numerical_test,
            categorical_test=settings.categorical_test,
            threshold=settings.threshold,
            drift_share=settings.drift_share,
            window_start=start,
            window_end=end,
        )
        self.last = result
        self.windows += 1
        return json.dumps(window_record(result, settings.deployment), allow_nan=False)


class PythonBins(ScalarFunction):  # type: ignore[misc]
    """Every feature's cell of one event, computed in Python per event: the benchmark's peer of the Java bins."""

    def __init__(self, rules: Mapping[str, Mapping[str, Any]]) -> None:
        offsets = cell_offsets(rules)
        self.plan: list[tuple[bool, Any, int, int, int]] = []
        for name, rule in rules.items():
            if rule["kind"] == "numeric":
                self.plan.append((True, list(rule["edges"]), offsets[name], rule["missing"], 0))
            else:
                self.plan.append((False, category_bins(rule), offsets[name], rule["missing"], rule["other"]))

    def eval(self, *values: Any) -> list[int]:
        cells = []
        for (numeric, table, offset, missing, other), value in zip(self.plan, values, strict=True):
            if value is None:
                cells.append(offset + missing)
            elif numeric:
                finite = math.isfinite(value)
                cells.append(offset + (bisect.bisect_right(table, value) if finite else missing))
            else:
                cells.append(offset + table.get(value, other))
        return cells


@dataclass
class DriftRunResult:
    job_id: str
    seconds: float
    # Time the job ran on the cluster, without start-up, planning and submission.
    runtime_s: float = 0.0


def drift_spec(options: DriftOptions, profile: Mapping[str, Any]) -> DriftSpec:
    sink = options.sink or options.source
    lake = Lake(options.lake) if options.lake else None
    return DriftSpec(
        rules=bin_index_rules(profile),
        deployment=options.deployment,
        window_seconds=options.window_seconds,
        lateness_s=options.lateness_s,
        source=options.source,
        sink=sink,
        lake_uri=lake_uri(lake) if lake else None,
        bootstrap=options.bootstrap,
        topic=options.topic,
        results_topic=options.results_topic,
        group_id=options.group_id or f"clinops-drift-{options.deployment}",
        bounded=options.bounded,
        model=options.model,
        model_version=options.model_version,
        binning=options.binning,
    )


def _config(options: DriftOptions, spec: DriftSpec) -> dict[str, str]:
    config = {"pipeline.name": f"clinops drift {options.deployment}"}
    if options.metrics_port:
        config["metrics.reporter.prom.factory.class"] = PROMETHEUS_FACTORY
        config["metrics.reporter.prom.port"] = options.metrics_port
    config = {**config, **options.extra_config}
    # The Java aggregates open with the rules from the job's parameters, which reach every task with the job.
    parameters = [config[GLOBAL_JOB_PARAMETERS]] if config.get(GLOBAL_JOB_PARAMETERS) else []
    config[GLOBAL_JOB_PARAMETERS] = ",".join([*parameters, f"{RULES_PARAMETER}:{encode_rules(spec.rules)}"])
    return config


def _expose_metrics(jars_dir: Path) -> None:
    """Puts the Prometheus reporter on the gateway JVM's class path, where the local mini-cluster looks for it.

    The mini-cluster loads reporters from its class path only (not from the plugins folder a Flink cluster reads);
    PyFlink's gateway appends HADOOP_CLASSPATH to that class path.
    """
    reporters = sorted((jars_dir / "plugins" / "metrics-prometheus").glob("*.jar"))
    if not reporters:
        raise FlinkJobError(f"no Prometheus reporter in {jars_dir / 'plugins'}: run `make flink-jars`")
    existing = os.environ.get("HADOOP_CLASSPATH")
    os.environ["HADOOP_CLASSPATH"] = os.pathsep.join([str(reporters[0]), *([existing] if existing else [])])


def run(options: DriftOptions) -> DriftRunResult:
    """Run the job to its end (files, or Kafka with ``bounded``) or until cancelled (Kafka)."""
    try:
        profile = restrict_profile(load_profile(options.profile), options.features)
    except (OSError, ValueError, KeyError) as exc:
        raise FlinkJobError(f"cannot read the reference profile {options.profile}: {exc}") from exc
    spec = drift_spec(options, profile)
    if spec.source is SourceKind.FILES:
        lake = Lake(str(options.lake))
        if not lake.keys(bronze_prefix(spec.topic), suffix=".jsonl"):
            # A file source over a missing folder fails the whole job with a stack trace.
            raise FlinkJobError(f"no prediction log under {lake.uri(bronze_prefix(spec.topic))}")
    settings = ReportSettings(
        profile=profile,
        deployment=options.deployment,
        window_seconds=options.window_seconds,
        numerical_test=options.numerical_test,
        categorical_test=options.categorical_test,
        threshold=options.threshold,
        drift_share=options.drift_share,
    )
    environment = RunOptions(
        lake=options.lake or "",
        parallelism=options.parallelism,
        checkpoint_interval_s=options.checkpoint_interval_s,
        extra_config=_config(options, spec),
    )
    jars_dir = jar_cache()
    require_classes(jars_dir, JAVA_FUNCTIONS.values())
    if options.metrics_port:
        _expose_metrics(jars_dir)
    t_env = table_environment(environment, jars_dir)
    t_env.create_temporary_system_function(DRIFT_REPORT_UDF, udf(DriftReport(settings), result_type=DataTypes.STRING()))
    if spec.binning is Binning.PYTHON:
        t_env.create_temporary_system_function(
            BINS_UDF, udf(PythonBins(spec.rules), result_type=DataTypes.ARRAY(DataTypes.INT()))
        )
    job = statements(spec)
    for statement in job.ddl:
        t_env.execute_sql(statement)
    for name, query in job.views:
        t_env.create_temporary_view(name, t_env.sql_query(query))
    statement_set = t_env.create_statement_set()
    statement_set.add_insert_sql(job.insert)
    if options.explain:
        print(statement_set.explain())
        return DriftRunResult(job_id="", seconds=0.0)
    started = time.perf_counter()
    result = statement_set.execute()
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client is not None else ""
    log.info("Submitted Flink job %s", job_id)
    result.wait()
    seconds = time.perf_counter() - started
    runtime_s = client.get_job_execution_result().result().get_net_runtime() / 1000 if client is not None else 0.0
    return DriftRunResult(job_id=job_id, seconds=seconds, runtime_s=runtime_s)
