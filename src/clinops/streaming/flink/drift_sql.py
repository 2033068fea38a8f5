"""The drift job's Flink SQL: per-event bins counted per window by a Java aggregate, one Python call per window."""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np

from clinops.lake.layout import bronze_prefix, drift_prefix
from clinops.monitoring.drift import CATEGORICAL_TESTS, NUMERICAL_TESTS
from clinops.monitoring.profile import IntArray
from clinops.streaming.flink.silver_sql import NEVER_MS, SourceKind, interval, literal, quote, with_options

PREDICTIONS_TOPIC = "predictions"
RESULTS_TOPIC = "drift-results"
DRIFT_REPORT_UDF = "clinops_drift_report"
BINS_UDF = "clinops_bins"
# The Java functions of scripts/flink-udf (the jar `make flink-jars` puts beside the connectors).
BIN_COUNTS_UDAF = "clinops_bin_counts"
CELL_COUNTS_UDAF = "clinops_cell_counts"
JAVA_FUNCTIONS = {
    BIN_COUNTS_UDAF: "io.clinops.flink.DriftBinCounts",
    CELL_COUNTS_UDAF: "io.clinops.flink.DriftCellCounts",
}
# The job parameter the Java functions read the rules from (BinRules.PARAMETER), and the layout they decode.
RULES_PARAMETER = "clinops.drift.rules"
RULES_FORMAT = 1
# JSON booleans reach a STRING column as true/false; the profile holds pandas' text of them.
BOOLEAN_TEXT = {"True": "true", "False": "false"}


class Binning(StrEnum):
    """Where each event's bins are computed: a Java aggregate in the JVM, or a per-event Python UDF (the peer)."""

    JAVA = "java"
    PYTHON = "python"


@dataclass(frozen=True)
class DriftSpec:
    """What the job reads, monitors and writes; ``rules`` are ``bin_index_rules`` of the monitored features."""

    rules: Mapping[str, Mapping[str, Any]]
    deployment: str
    window_seconds: int = 600
    lateness_s: int = 300
    source: SourceKind = SourceKind.FILES
    sink: SourceKind = SourceKind.FILES
    lake_uri: str | None = None
    bootstrap: str | None = None
    topic: str = PREDICTIONS_TOPIC
    results_topic: str = RESULTS_TOPIC
    group_id: str = "clinops-drift"
    bounded: bool = False
    model: str | None = None
    model_version: str | None = None
    binning: Binning = Binning.JAVA
    sink_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rules:
            raise ValueError("no features to monitor")
        if self.window_seconds < 1:
            raise ValueError(f"window must be at least one second, got {self.window_seconds}")
        interval(self.window_seconds)
        interval(self.lateness_s)
        kafka = SourceKind.KAFKA in (self.source, self.sink)
        files = SourceKind.FILES in (self.source, self.sink)
        if kafka and not self.bootstrap:
            raise ValueError("a Kafka source or sink needs bootstrap servers")
        if files and not self.lake_uri:
            raise ValueError("a file source or sink needs the lake")


def cell_offsets(rules: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """First cell of each feature: one integer ``offset + bin`` names a (feature, bin) pair across all features."""
    offsets: dict[str, int] = {}
    start = 0
    for name, rule in rules.items():
        offsets[name] = start
        start += int(rule["size"])
    return offsets


def counts_from_cells(cells: Sequence[int], rules: Mapping[str, Mapping[str, Any]]) -> dict[str, IntArray]:
    """Every feature's bin counts from one window's counts of all cells, as ``window_counts`` gives them."""
    counts = np.asarray(cells, dtype=np.int64)
    offsets = cell_offsets(rules)
    total = sum(int(rule["size"]) for rule in rules.values())
    if counts.shape != (total,):
        raise ValueError(f"{counts.size} cell counts; the rules have {total} cells")
    if (counts < 0).any():
        raise ValueError("negative cell count")
    return {name: counts[offsets[name] : offsets[name] + int(rule["size"])].copy() for name, rule in rules.items()}


def category_bins(rule: Mapping[str, Any]) -> dict[str, int]:
    """The texts a categorical feature's value may arrive as, each with its bin (a text not here is "other").

    A JSON boolean arrives as true / false where the profile holds pandas' True / False; a category true of its own
    would join True (pandas keeps them apart, but a log of booleans has none), so the alias stands only without one.
    """
    bins = {text: index for index, text in enumerate(rule["categories"])}
    for category, json_text in BOOLEAN_TEXT.items():
        if category in bins and json_text not in bins:
            bins[json_text] = bins[category]
    return bins


def encode_rules(rules: Mapping[str, Mapping[str, Any]]) -> str:
    """The rules as the Java functions read them (``io.clinops.flink.BinRules``): base64 of a big-endian record.

    Format ``RULES_FORMAT``, the number of features, then per feature in the job's order a kind byte and: numeric
    (0), the edges as IEEE-754 doubles (the profile's very values, no decimal round trip); categorical (1), the
    number of categories and every text of ``category_bins`` as UTF-8 with its bin. Base64 keeps the text free of
    the ``,`` and ``:`` that separate job parameters.
    """
    out = bytearray(struct.pack(">ii", RULES_FORMAT, len(rules)))
    for name, rule in rules.items():
        if rule["kind"] == "numeric":
            edges = [float(e) for e in rule["edges"]]
            out += struct.pack(f">bi{len(edges)}d", 0, len(edges), *edges)
            continue
        texts = category_bins(rule)
        out += struct.pack(">bii", 1, len(rule["categories"]), len(texts))
        for text, index in texts.items():
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"feature {name!r}: category {text!r} is not valid Unicode") from exc
            out += struct.pack(">i", len(data)) + data + struct.pack(">i", index)
    return base64.b64encode(bytes(out)).decode("ascii")


def feature_column(name: str) -> str:
    return f"`features`.{quote(name.replace('`', '``'))}"


def _feature_type(rule: Mapping[str, Any]) -> str:
    return "DOUBLE" if rule["kind"] == "numeric" else "STRING"


def source_ddl(spec: DriftSpec) -> str:
    """The prediction log: only the fields the job reads; a feature absent from a record is null."""
    fields = ", ".join(f"{quote(name.replace('`', '``'))} {_feature_type(r)}" for name, r in spec.rules.items())
    if spec.source is SourceKind.FILES:
        # A watermark that never passes an event: over files (no time order) every window fires when the input ends.
        watermark = f"TO_TIMESTAMP_LTZ({NEVER_MS}, 3)"
        options = {
            "connector": "filesystem",
            "path": f"{spec.lake_uri}/{bronze_prefix(spec.topic).rstrip('/')}",
            "source.path.regex-pattern": r".*\.jsonl",
        }
    else:
        watermark = f"`event_time` - {interval(spec.lateness_s)}"
        options = {
            "connector": "kafka",
            "topic": spec.topic,
            "properties.bootstrap.servers": str(spec.bootstrap),
            "properties.group.id": spec.group_id,
            "properties.auto.offset.reset": "earliest",
            "scan.startup.mode": "group-offsets",
        }
        if spec.bounded:
            options["scan.bounded.mode"] = "latest-offset"
    options.update({"format": "json", "json.ignore-parse-errors": "true"})
    # A record without a timestamp cannot be windowed: it gets an instant no window holds and is filtered out.
    return (
        f"CREATE TABLE `predictions` (`timestamp_ms` BIGINT, `model` STRING, `model_version` STRING, "
        f"`features` ROW<{fields}>, "
        f"`event_time` AS TO_TIMESTAMP_LTZ(COALESCE(`timestamp_ms`, {NEVER_MS}), 3), "
        f"WATERMARK FOR `event_time` AS {watermark}) {with_options(options)}"
    )


def sink_ddl(spec: DriftSpec) -> str:
    """``drift-results``: one JSON record per window, keyed by the deployment on Kafka, by date in the lake."""
    if spec.sink is SourceKind.KAFKA:
        options = {
            "connector": "kafka",
            "topic": spec.results_topic,
            "properties.bootstrap.servers": str(spec.bootstrap),
            "key.format": "raw",
            "key.fields": "deployment",
            "value.format": "raw",
            "value.fields-include": "EXCEPT_KEY",
            **spec.sink_options,
        }
        return f"CREATE TABLE `drift_results` (`deployment` STRING, `record` STRING) {with_options(options)}"
    options = {
        "connector": "filesystem",
        "path": f"{spec.lake_uri}/{drift_prefix(spec.deployment).rstrip('/')}",
        "format": "raw",
        # One record per window: one writer keeps it to a file per day and checkpoint.
        "sink.parallelism": "1",
        **spec.sink_options,
    }
    columns = "(`record` STRING, `date` STRING) PARTITIONED BY (`date`)"
    return f"CREATE TABLE `drift_results` {columns} {with_options(options)}"


def _filters(spec: DriftSpec) -> str:
    conditions = ["`timestamp_ms` IS NOT NULL"]
    if spec.model is not None:
        conditions.append(f"`model` = {literal(spec.model)}")
    if spec.model_version is not None:
        conditions.append(f"`model_version` = {literal(spec.model_version)}")
    return " AND ".join(conditions)


@dataclass(frozen=True)
class JobStatements:
    """DDL to execute, then views to register from queries (so a view used twice is planned once), then the INSERT."""

    ddl: list[str]
    views: list[tuple[str, str]]
    insert: str


def function_ddl(name: str) -> str:
    return f"CREATE TEMPORARY SYSTEM FUNCTION {name} AS {literal(JAVA_FUNCTIONS[name])} LANGUAGE JAVA"


def _window_counts(source: str, aggregate: str, window: str) -> str:
    """One row per window of ``source``: its start and the counts of every cell by ``aggregate``.

    The aggregates merge partial counts, so each subtask counts its own events and only one row per subtask and
    window crosses the network to the final count.
    """
    start_s = "UNIX_TIMESTAMP(DATE_FORMAT(`window_start`, 'yyyy-MM-dd HH:mm:ss'))"
    return (
        f"SELECT `window_start`, {start_s} AS `start_s`, {aggregate} AS `counts` "
        f"FROM TABLE(TUMBLE(TABLE {quote(source)}, DESCRIPTOR(`event_time`), {window})) "
        f"GROUP BY `window_start`, `window_end`"
    )


def _counter(spec: DriftSpec) -> str:
    """The Java aggregate that counts the cells: of the features ROW, or of the Python UDF's cells."""
    return CELL_COUNTS_UDAF if spec.binning is Binning.PYTHON else BIN_COUNTS_UDAF


def _count_views(spec: DriftSpec, window: str) -> list[tuple[str, str]]:
    """Views up to ``drift_counts`` (window_start, start_s, counts): every window's counts of all cells."""
    values = ", ".join(feature_column(name) for name in spec.rules)
    if spec.binning is Binning.PYTHON:
        events = f"SELECT `event_time`, {BINS_UDF}({values}) AS `cells` FROM `predictions` WHERE {_filters(spec)}"
        aggregate = f"{_counter(spec)}(`cells`)"
    else:
        # The features ROW (declared in the rules' order) goes to the Java aggregate whole, as Flink holds it.
        events = f"SELECT `event_time`, `features` FROM `predictions` WHERE {_filters(spec)}"
        aggregate = f"{_counter(spec)}(`features`)"
    return [("drift_events", events), ("drift_counts", _window_counts("drift_events", aggregate, window))]


def statements(spec: DriftSpec) -> JobStatements:
    """The job: source and sink DDL, the Java aggregate, the view of window counts and the INSERT of drift records.

    The Python report runs on the one row per window that the count emits.
    """
    window = interval(spec.window_seconds)
    report = f"{DRIFT_REPORT_UDF}(`start_s`, `counts`)"
    if spec.sink is SourceKind.KAFKA:
        insert = f"INSERT INTO `drift_results` SELECT {literal(spec.deployment)}, {report} FROM `drift_counts`"
    else:
        date = "DATE_FORMAT(`window_start`, 'yyyy-MM-dd')"
        insert = f"INSERT INTO `drift_results` SELECT {report}, {date} FROM `drift_counts`"
    ddl = [source_ddl(spec), sink_ddl(spec), function_ddl(_counter(spec))]
    return JobStatements(ddl, _count_views(spec, window), insert)


def window_bounds(start_s: int, window_seconds: int) -> tuple[str, str]:
    """ISO-8601 (UTC) start and end of the window starting at epoch second ``start_s``, as the record names them."""
    start = datetime.fromtimestamp(start_s, tz=UTC)
    end = datetime.fromtimestamp(start_s + window_seconds, tz=UTC)
    return start.isoformat(), end.isoformat()


@dataclass(frozen=True)
class DriftOptions:
    """The job's settings; tests and thresholds as ``drift_report`` takes them."""

    profile: str
    deployment: str
    lake: str | None = None
    source: SourceKind = SourceKind.FILES
    sink: SourceKind | None = None
    bootstrap: str | None = None
    topic: str = PREDICTIONS_TOPIC
    results_topic: str = RESULTS_TOPIC
    group_id: str | None = None
    bounded: bool = False
    features: tuple[str, ...] | None = None
    window_seconds: int = 600
    lateness_s: int = 300
    numerical_test: str = "ks"
    categorical_test: str = "chi2"
    threshold: float | None = None
    drift_share: float = 0.5
    model: str | None = None
    model_version: str | None = None
    parallelism: int = 2
    checkpoint_interval_s: float = 10.0
    binning: Binning = Binning.JAVA
    metrics_port: str | None = None
    extra_config: dict[str, str] = field(default_factory=dict)
    explain: bool = False


def add_drift_parser(jobs: Any) -> None:
    """The ``drift`` subcommand of ``python -m clinops.streaming.flink`` (``jobs``: its subparsers)."""
    job = jobs.add_parser("drift", help="Per-window drift of the prediction log against a reference profile.")
    job.add_argument("--profile", required=True, help="Reference profile JSON: a path, file:// or s3:// URI.")
    job.add_argument("--deployment", required=True, help="The monitored deployment: names results and lake keys.")
    job.add_argument("--lake", help="Lake root (directory or s3://bucket/prefix) for a file source or sink.")
    job.add_argument("--source", choices=[k.value for k in SourceKind], default="files", help="Read the lake or Kafka.")
    job.add_argument("--sink", choices=[k.value for k in SourceKind], help="Write the lake or Kafka (default: source).")
    job.add_argument("--bootstrap", help="Kafka bootstrap servers (host:port).")
    job.add_argument("--topic", default=PREDICTIONS_TOPIC, help="Prediction log topic (also the bronze topic name).")
    job.add_argument("--results-topic", default=RESULTS_TOPIC, help="Kafka topic of the drift results.")
    job.add_argument("--group-id", help="Kafka consumer group (default: clinops-drift-<deployment>).")
    job.add_argument("--bounded", action="store_true", help="Kafka: stop at the offsets current at start.")
    job.add_argument("--features", help="Comma-separated monitored features (default: every profiled feature).")
    job.add_argument("--window-seconds", type=int, default=600, help="Tumbling event-time window size.")
    job.add_argument("--lateness", type=int, default=300, help="Kafka: seconds an event may trail the newest one.")
    job.add_argument("--numerical-test", choices=NUMERICAL_TESTS, default="ks")
    job.add_argument("--categorical-test", choices=CATEGORICAL_TESTS, default="chi2")
    job.add_argument("--threshold", type=float, help="p-value or distance limit (default: each test's own).")
    job.add_argument("--drift-share", type=float, default=0.5, help="Share of drifted features that flags a window.")
    job.add_argument("--model", help="Only predictions of this registered model.")
    job.add_argument("--model-version", help="Only predictions of this model version.")
    job.add_argument("--parallelism", type=int, default=2, help="Parallelism of every operator.")
    job.add_argument("--checkpoint-interval", type=float, default=10.0, help="Seconds between checkpoints.")
    job.add_argument(
        "--binning", choices=[b.value for b in Binning], default="java", help="java; python is the benchmark's peer."
    )
    job.add_argument("--metrics-port", help="Expose metrics to Prometheus on this port or range (e.g. 9249-9259).")
    job.add_argument("--explain", action="store_true", help="Print the optimized plan instead of running.")
    job.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Extra Flink configuration.")


def drift_options(args: Any) -> DriftOptions:
    """Options from the parsed ``drift`` arguments; ``ValueError`` names the argument that is wrong."""
    source = SourceKind(args.source)
    sink = SourceKind(args.sink) if args.sink else source
    if SourceKind.KAFKA in (source, sink) and not args.bootstrap:
        raise ValueError("a Kafka source or sink needs --bootstrap host:port")
    if SourceKind.FILES in (source, sink) and not args.lake:
        raise ValueError("a file source or sink needs --lake")
    if args.parallelism < 1:
        raise ValueError("--parallelism must be at least 1")
    if args.window_seconds < 1:
        raise ValueError("--window-seconds must be at least 1")
    if args.lateness < 0:
        raise ValueError("--lateness must not be negative")
    if args.threshold is not None and not args.threshold > 0:
        raise ValueError("--threshold must be > 0")
    if not 0 < args.drift_share <= 1:
        raise ValueError("--drift-share must be in (0, 1]")
    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, not {item!r}")
        extra[key] = value
    features = tuple(f.strip() for f in args.features.split(",") if f.strip()) if args.features else None
    return DriftOptions(
        profile=args.profile,
        deployment=args.deployment,
        lake=args.lake,
        source=source,
        sink=sink,
        bootstrap=args.bootstrap,
        topic=args.topic,
        results_topic=args.results_topic,
        group_id=args.group_id,
        bounded=args.bounded,
        features=features,
        window_seconds=args.window_seconds,
        lateness_s=args.lateness,
        numerical_test=args.numerical_test,
        categorical_test=args.categorical_test,
        threshold=args.threshold,
        drift_share=args.drift_share,
        model=args.model,
        model_version=args.model_version,
        parallelism=args.parallelism,
        checkpoint_interval_s=args.checkpoint_interval,
        binning=Binning(args.binning),
        metrics_port=args.metrics_port,
        extra_config=extra,
        explain=args.explain,
    )
