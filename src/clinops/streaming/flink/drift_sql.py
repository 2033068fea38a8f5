"""The drift job's Flink SQL: per-event bins by the profile's bin rule, counted per window and cell in the JVM."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from clinops.lake.layout import bronze_prefix, drift_prefix
from clinops.monitoring.drift import CATEGORICAL_TESTS, NUMERICAL_TESTS
from clinops.streaming.flink.silver_sql import NEVER_MS, SourceKind, interval, literal, quote, with_options

PREDICTIONS_TOPIC = "predictions"
RESULTS_TOPIC = "drift-results"
DRIFT_UDAF = "clinops_drift_report"
BINS_UDF = "clinops_bins"
# Text that is a finite double lies between these; null, NaN and ±inf fail both comparisons, so one range test
# sends every missing value to the missing bin (JSON has no NaN, but "NaN" as text parses to one).
MAX_DOUBLE = 1.7976931348623157e308
# A watermark that never passes an event: over files (no time order) every window fires when the input ends.
# JSON booleans reach a STRING column as true/false; the profile holds pandas' text of them.
BOOLEAN_TEXT = {"True": "true", "False": "false"}


class Binning(StrEnum):
    """Where each event's bins are computed: SQL in the JVM, or a per-event Python UDF (the benchmark's peer)."""

    SQL = "sql"
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
    binning: Binning = Binning.SQL
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


def double_literal(value: float) -> str:
    """A DOUBLE literal that parses to exactly ``value``: Python's shortest round-trip digits in E notation."""
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"not a finite double: {value}")
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent or 0)}"


def cell_offsets(rules: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """First cell of each feature: one integer ``offset + bin`` names a (feature, bin) pair across all features."""
    offsets: dict[str, int] = {}
    start = 0
    for name, rule in rules.items():
        offsets[name] = start
        start += int(rule["size"])
    return offsets


def decode_cells(
    cells: Iterable[int], counts: Iterable[int], rules: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, int, int]]:
    """``(feature, bin, count)`` rows, as ``counts_from_rows`` takes them, from counts per cell."""
    names = list(rules)
    starts = list(cell_offsets(rules).values())
    ends = [start + int(rules[name]["size"]) for start, name in zip(starts, names, strict=True)]
    rows = []
    for cell, count in zip(cells, counts, strict=True):
        index = bisect.bisect_right(starts, int(cell)) - 1
        if index < 0 or int(cell) >= ends[index]:
            raise ValueError(f"cell {cell} names no feature's bin")
        rows.append((names[index], int(cell) - starts[index], int(count)))
    return rows


def numeric_cell(column: str, edges: Sequence[float], missing: int, offset: int = 0) -> str:
    """``offset + bin`` of a DOUBLE column: a binary search over the edges as nested CASEs (depth log2 of the edges).

    Each comparison ``v < edges[mid]`` halves the candidate bins ``lo..hi``; bin = number of edges <= v.
    """
    literals = [double_literal(e) for e in edges]

    def search(lo: int, hi: int) -> str:
        if lo == hi:
            return str(offset + lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN {column} < {literals[mid]} THEN {search(lo, mid)} ELSE {search(mid + 1, hi)} END"

    bounds = f"{column} >= {double_literal(-MAX_DOUBLE)} AND {column} <= {double_literal(MAX_DOUBLE)}"
    return f"CASE WHEN {bounds} THEN {search(0, len(literals))} ELSE {offset + missing} END"


def categorical_cell(column: str, categories: Sequence[str], other: int, missing: int, offset: int = 0) -> str:
    """``offset + bin`` of a STRING column: the category whose pandas text it is, else other; null is missing."""
    branches = []
    for index, category in enumerate(categories):
        texts = [category]
        # A JSON string "true" would join True here too: pandas keeps it apart, but a log of booleans has none.
        if category in BOOLEAN_TEXT and BOOLEAN_TEXT[category] not in categories:
            texts.append(BOOLEAN_TEXT[category])
        condition = " OR ".join(f"{column} = {literal(text)}" for text in texts)
        branches.append(f"WHEN {condition} THEN {offset + index}")
    return f"CASE WHEN {column} IS NULL THEN {offset + missing} {' '.join(branches)} ELSE {offset + other} END"


def feature_column(name: str) -> str:
    return f"`features`.{quote(name.replace('`', '``'))}"


def cell_expression(column: str, rule: Mapping[str, Any], offset: int) -> str:
    """``offset + bin`` of ``column`` (a DOUBLE or STRING expression) by the feature's bin rule."""
    if rule["kind"] == "numeric":
        return numeric_cell(column, rule["edges"], rule["missing"], offset)
    return categorical_cell(column, rule["categories"], rule["other"], rule["missing"], offset)


def _feature_type(rule: Mapping[str, Any]) -> str:
    return "DOUBLE" if rule["kind"] == "numeric" else "STRING"


def source_ddl(spec: DriftSpec) -> str:
    """The prediction log: only the fields the job reads; a feature absent from a record is null."""
    fields = ", ".join(f"{quote(name.replace('`', '``'))} {_feature_type(r)}" for name, r in spec.rules.items())
    if spec.source is SourceKind.FILES:
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


def _column_prefix(spec: DriftSpec) -> str:
    """A prefix no feature name starts with: Calcite resolves a bare name to a field of the features ROW too."""
    prefix = "__v"
    while any(name.startswith(prefix) for name in spec.rules):
        prefix = "_" + prefix
    return prefix


def _column(prefix: str, fid: int) -> str:
    return f"`{prefix}{fid}`"


def _flat_value(name: str, rule: Mapping[str, Any]) -> str:
    """A numeric feature as a DOUBLE NOT NULL, null as NaN (missing either way): comparisons on a NOT NULL value
    compile to a few bytes each, without the null bookkeeping Flink writes around every nullable one."""
    column = f"`e`.{feature_column(name)}"
    return f"COALESCE({column}, CAST('NaN' AS DOUBLE))" if rule["kind"] == "numeric" else column


def _flat_view(spec: DriftSpec) -> str:
    """Each monitored feature as a plain column ``__v<i>``: the one row a correlated UNNEST of the features emits.

    Flink re-reads a nested field at every use, and a search reads its value at every level; the UNNEST is an
    operator boundary, so each feature's operator reads a plain column instead (an uncorrelated UNNEST would be
    a join and drop the event-time attribute).
    """
    values = ", ".join(_flat_value(name, rule) for name, rule in spec.rules.items())
    columns = ", ".join(_column(_column_prefix(spec), fid) for fid in range(len(spec.rules)))
    return (
        f"SELECT `event_time`, {columns} FROM `predictions` AS `e` "
        f"CROSS JOIN UNNEST(ARRAY[ROW({values})]) AS `b` ({columns}) WHERE {_filters(spec)}"
    )


def _counts(cells_view: str, window: str) -> str:
    """Counts per (window, cell) of a view of (event_time, cell), pre-aggregated per subtask."""
    return (
        f"SELECT `window_start`, `window_time`, `cell`, COUNT(*) AS `n` "
        f"FROM TABLE(TUMBLE(TABLE {quote(cells_view)}, DESCRIPTOR(`event_time`), {window})) "
        f"GROUP BY `window_start`, `window_end`, `window_time`, `cell`"
    )


def _count_views(spec: DriftSpec, window: str) -> list[tuple[str, str]]:
    """Views up to ``drift_counts`` (window_start, window_time, cell, n): every (window, cell) pair's count."""
    if spec.binning is Binning.PYTHON:
        args = ", ".join(f"`e`.{feature_column(name)}" for name in spec.rules)
        cells = (
            f"SELECT `event_time`, `cell` FROM `predictions` AS `e` "
            f"CROSS JOIN UNNEST({BINS_UDF}({args})) AS `c` (`cell`) WHERE {_filters(spec)}"
        )
        return [("drift_cells", cells), ("drift_counts", _counts("drift_cells", window))]
    offsets = cell_offsets(spec.rules)
    prefix = _column_prefix(spec)
    # One SELECT per feature, so each feature's search compiles into an operator of its own: Flink writes ~10 Java
    # lines per comparison, and one operator holding every feature's tree takes minutes to plan and overflows a JVM
    # method. One window aggregation counts them all (one per feature would split managed memory too thin).
    branches = [
        f"SELECT `event_time`, {cell_expression(_column(prefix, fid), rule, offsets[name])} AS `cell` FROM `drift_flat`"
        for fid, (name, rule) in enumerate(spec.rules.items())
    ]
    return [
        ("drift_flat", _flat_view(spec)),
        ("drift_cells", " UNION ALL ".join(branches)),
        ("drift_counts", _counts("drift_cells", window)),
    ]


def statements(spec: DriftSpec) -> JobStatements:
    """The job: source and sink DDL, the views from events to window counts, and the INSERT of drift records."""
    window = interval(spec.window_seconds)
    # The same tumbling window over the count rows' window_time holds exactly one first-stage window, so the
    # pandas aggregate runs once per window, over at most the profile's number of cells.
    start = "UNIX_TIMESTAMP(DATE_FORMAT(`window_start`, 'yyyy-MM-dd HH:mm:ss'))"
    report = f"{DRIFT_UDAF}(`start_s`, `cell`, `n`)"
    grouped = (
        f"FROM (SELECT `window_time`, {start} AS `start_s`, `cell`, `n` FROM `drift_counts`) "
        f"GROUP BY TUMBLE(`window_time`, {window})"
    )
    if spec.sink is SourceKind.KAFKA:
        insert = f"INSERT INTO `drift_results` SELECT {literal(spec.deployment)}, {report} {grouped}"
    else:
        date = f"DATE_FORMAT(TUMBLE_START(`window_time`, {window}), 'yyyy-MM-dd')"
        insert = f"INSERT INTO `drift_results` SELECT {report}, {date} {grouped}"
    return JobStatements([source_ddl(spec), sink_ddl(spec)], _count_views(spec, window), insert)


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
    binning: Binning = Binning.SQL
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
        "--binning", choices=[b.value for b in Binning], default="sql", help="sql; python is the benchmark's peer."
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
