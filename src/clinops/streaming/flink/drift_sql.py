"""The drift job's Flink SQL: per-event bins by the profile's bin rule, counted per window and cell in the JVM."""

from __future__ import annotations

import bisect
import math
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


# Per operator of the search: the JIT compiles no method over 8,000 bytes of bytecode (a test is ~50), and a literal
# array costs its operator's constructor ~15 bytes an element, where a JVM method holds 64 KB.
TESTS_PER_OPERATOR = 120
EDGES_PER_OPERATOR = 4000


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


def edges_array(edges: Sequence[float]) -> str:
    """The edges as an ARRAY literal: Flink builds a literal array once, when its operator is created."""
    return f"ARRAY[{', '.join(double_literal(e) for e in edges)}]"


def opaque(constant: str) -> str:
    """``constant`` as the planner cannot see it: RAND_INTEGER(1) is always 0, but not a constant to the planner.

    The planner substitutes a constant column into every expression that reads it, through any boundary, and
    Flink builds a literal array once per use; hidden, the array is built once and each use reads the column.
    """
    return f"CASE WHEN RAND_INTEGER(1) = 0 THEN {constant} END"


def block_size(size: int) -> int:
    """Edges per block of a two-level search over ``size`` edges: blocks and edges per block both ~sqrt(size)."""
    return math.isqrt(size) + 1


def count_true(tests: Sequence[str]) -> str:
    """How many of ``tests`` hold, given they hold for a prefix only: a binary search as nested CASEs.

    A test that is NULL (an index past an array's end) counts as false, as SQL's CASE takes it.
    """

    def search(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2
        return f"CASE WHEN {tests[mid - 1]} THEN {search(mid, hi)} ELSE {search(lo, mid - 1)} END"

    return search(0, len(tests))


def block_search(value: str, edges: Sequence[float]) -> str:
    """The block of ``value``: how many block-closing edges (every ``block_size``-th) are <= it."""
    size = block_size(len(edges))
    return count_true([f"{value} >= {double_literal(edges[j * size - 1])}" for j in range(1, len(edges) // size + 1)])


def edge_search(value: str, array: str, block: str, edges: int) -> str:
    """Number of edges <= ``value`` (``bisect_right``), from its block: the block's start plus the block's edges
    <= it, read from the ``array`` column of all ``edges`` edges (1-based; past the end reads NULL)."""
    size = block_size(edges)
    start = f"{block} * {size}"
    return f"{start} + {count_true([f'{array}[{start} + {i}] <= {value}' for i in range(1, size)])}"


def in_range(value: str) -> str:
    """True for a finite DOUBLE; null, NaN and ±inf fail both comparisons."""
    return f"{value} >= {double_literal(-MAX_DOUBLE)} AND {value} <= {double_literal(MAX_DOUBLE)}"


def numeric_cell(value: str, position: str, missing: int, offset: int = 0) -> str:
    """``offset + bin`` of a DOUBLE column whose search ended at ``position``; a value not finite is missing."""
    return f"CASE WHEN {in_range(value)} THEN {offset} + {position} ELSE {offset + missing} END"


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


def cell_expression(value: str, position: str, rule: Mapping[str, Any], offset: int) -> str:
    """``offset + bin`` of ``value`` (a DOUBLE or STRING expression) by the feature's bin rule; ``position`` is where
    a numeric feature's search ended."""
    if rule["kind"] == "numeric":
        return numeric_cell(value, position, rule["missing"], offset)
    return categorical_cell(value, rule["categories"], rule["other"], rule["missing"], offset)


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


@dataclass(frozen=True)
class Columns:
    """The plain columns the views give feature ``fid``: its value, block, edges and number of edges <= the value."""

    prefix: str

    def value(self, fid: int) -> str:
        return f"`{self.prefix}v{fid}`"

    def block(self, fid: int) -> str:
        return f"`{self.prefix}b{fid}`"

    def edges(self, fid: int) -> str:
        return f"`{self.prefix}e{fid}`"

    def position(self, fid: int) -> str:
        return f"`{self.prefix}p{fid}`"


def columns(spec: DriftSpec) -> Columns:
    """Columns under a prefix no feature name starts with: Calcite resolves a bare name to a field of the features
    ROW too."""
    prefix = "__"
    while any(name.startswith(prefix) for name in spec.rules):
        prefix = "_" + prefix
    return Columns(prefix)


def _flat_value(name: str, rule: Mapping[str, Any]) -> str:
    """A numeric feature as a DOUBLE NOT NULL, null as NaN (missing either way): comparisons on a NOT NULL value
    compile to a few bytes each, without the null bookkeeping Flink writes around every nullable one."""
    column = f"`e`.{feature_column(name)}"
    return f"COALESCE({column}, CAST('NaN' AS DOUBLE))" if rule["kind"] == "numeric" else column


def _flat_view(spec: DriftSpec, cols: Columns) -> str:
    """Each monitored feature as a plain column: the one row a correlated UNNEST of the features emits.

    Flink re-reads a nested field at every use, and a search reads its value at every level; the UNNEST is an
    operator boundary, so later operators read a plain column instead (an uncorrelated UNNEST would be a join and
    drop the event-time attribute).
    """
    values = ", ".join(_flat_value(name, rule) for name, rule in spec.rules.items())
    names = ", ".join(cols.value(fid) for fid in range(len(spec.rules)))
    return (
        f"SELECT `event_time`, {names} FROM `predictions` AS `e` "
        f"CROSS JOIN UNNEST(ARRAY[ROW({values})]) AS `b` ({names}) WHERE {_filters(spec)}"
    )


def _searched(spec: DriftSpec) -> dict[int, list[float]]:
    """The edges of each numeric feature that has any, by feature id."""
    return {
        fid: list(rule["edges"])
        for fid, rule in enumerate(spec.rules.values())
        if rule["kind"] == "numeric" and rule["edges"]
    }


def _chunks(costs: Mapping[int, Sequence[int]], budgets: Sequence[int]) -> list[list[int]]:
    """Feature ids in runs whose costs add up to at most each budget (a feature over one runs alone)."""
    chunks: list[list[int]] = []
    totals = [0] * len(budgets)
    for fid, cost in costs.items():
        if not chunks or any(total + c > budget for total, c, budget in zip(totals, cost, budgets, strict=True)):
            chunks.append([])
            totals = [0] * len(budgets)
        chunks[-1].append(fid)
        totals = [total + c for total, c in zip(totals, cost, strict=True)]
    return chunks


def _barrier(source: str, carried: Sequence[str]) -> str:
    """``source``'s ``carried`` columns behind a correlated UNNEST of one element, an operator boundary.

    The planner merges consecutive projections into one operator, which would put every feature's search into one
    method (and inline an array column at each of its uses); it keeps an UNNEST as an operator of its own.
    """
    kept = ", ".join(f"`s`.{name}" for name in carried)
    return f"SELECT {kept} FROM {quote(source)} AS `s` CROSS JOIN UNNEST(ARRAY[`s`.{carried[1]}]) AS `b` (`x`)"


def _search_views(spec: DriftSpec, cols: Columns, source: str) -> list[tuple[str, str]]:
    """Views that give each numeric feature its number of edges <= the value, in two levels of ~sqrt(edges) each.

    First the value's block, by a search over every ``block_size``-th edge written as literals; then the edges
    within that block, read from a literal array indexed by the block. Each level is a binary search as nested
    CASEs over ~sqrt(edges) tests, in projections (which read each input column once, where an UNNEST's
    expressions re-read it at every use). Features go into projections in runs within ``TESTS_PER_OPERATOR`` tests
    and ``EDGES_PER_OPERATOR`` literal edges, each run behind a boundary: every operator's method stays small
    enough for the JIT, which leaves methods over 8,000 bytes of bytecode interpreted (one CASE tree over all
    ~500 edges of a feature ran to ~5,000 generated lines).
    """
    searched = _searched(spec)
    carried = ["`event_time`", *(cols.value(fid) for fid in range(len(spec.rules)))]
    blocks = {fid: [len(edges) // block_size(len(edges))] for fid, edges in searched.items()}
    stages = [
        [(block_search(cols.value(fid), searched[fid]), cols.block(fid)) for fid in chunk]
        for chunk in _chunks(blocks, [TESTS_PER_OPERATOR])
    ]
    # Within a block there are block_size - 1 edges to test; the block's array holds all the edges.
    costs = {fid: [block_size(len(edges)) - 1, len(edges)] for fid, edges in searched.items()}
    edge_chunks = _chunks(costs, [TESTS_PER_OPERATOR, EDGES_PER_OPERATOR])
    for chunk in edge_chunks:
        # The arrays come in as columns from the stage before, behind a boundary: a column is read once, where a
        # literal at each of its uses would be built once per use; the arrays are references, never copied.
        stages[-1] += [(opaque(edges_array(searched[fid])), cols.edges(fid)) for fid in chunk]
        stages.append(
            [
                (edge_search(cols.value(fid), cols.edges(fid), cols.block(fid), len(searched[fid])), cols.position(fid))
                for fid in chunk
            ]
        )
    views: list[tuple[str, str]] = []
    arrays: list[str] = []
    for index, stage in enumerate(stages):
        # Arrays are read by the next stage only; carrying them further would copy them at every boundary.
        projected = [name for name in carried if name not in arrays]
        name = f"drift_search_{index}"
        columns_sql = ", ".join([*projected, *(f"{expression} AS {column}" for expression, column in stage)])
        views.append((name, f"SELECT {columns_sql} FROM {quote(source)}"))
        carried = [*projected, *(column for _, column in stage)]
        arrays = [column for _, column in stage if column.startswith(f"`{cols.prefix}e")]
        views.append((f"{name}_boundary", _barrier(name, carried)))
        source = f"{name}_boundary"
    return views


def _cells_view(spec: DriftSpec, cols: Columns, source: str) -> str:
    """Every feature's cell of an event, one row each (a correlated UNNEST of one array per event)."""
    offsets = cell_offsets(spec.rules)
    searched = _searched(spec)
    cells = []
    for fid, (name, rule) in enumerate(spec.rules.items()):
        position = f"`s`.{cols.position(fid)}" if fid in searched else "0"
        cells.append(cell_expression(f"`s`.{cols.value(fid)}", position, rule, offsets[name]))
    return (
        f"SELECT `s`.`event_time`, `c`.`cell` FROM {quote(source)} AS `s` "
        f"CROSS JOIN UNNEST(ARRAY[{', '.join(cells)}]) AS `c` (`cell`)"
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
    cols = columns(spec)
    searches = _search_views(spec, cols, "drift_flat")
    last = searches[-1][0] if searches else "drift_flat"
    return [
        ("drift_flat", _flat_view(spec, cols)),
        *searches,
        ("drift_cells", _cells_view(spec, cols, last)),
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
