"""The bronze → silver Flink SQL, generated from the record schemas and the batch validator's own constants."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc

from clinops.data.schemas import (
    ADVERSE_EVENT_KINDS,
    ADVERSE_GRADE_RANGE,
    DOSE_UNIT_CONVERSIONS,
    ENTITY_BY_EVENT_TYPE,
    ENVELOPE_FIELDS,
    LAB_TESTS,
    MEDICATION_ROUTES,
    MEDICATIONS,
    TOPIC_BY_EVENT_TYPE,
    VITAL_SIGNS,
    VITALS_BY_NAME,
    EventType,
)
from clinops.data.validation import (
    DEDUPE_DISCRIMINATOR,
    QUALITY_COLUMNS,
    RAW_FIELDS,
    SILVER_COLUMNS,
    TEXT_FIELDS,
    UNIT_CONVERTED_FACTOR,
    UNIT_INFERRED_FACTOR,
)
from clinops.lake.layout import QUARANTINE, bronze_prefix, silver_prefix
from clinops.lake.silver import silver_schema

# How a duplicate's standardised record shows its timestamp in quarantine (the batch path's canonical form).
CANONICAL_TIMESTAMP = "yyyy-MM-dd'T'HH:mm:ss'Z'"
# What pandas.to_numeric accepts as a number (Java's parser also takes "NaN", "5d", hex floats), and as infinity.
NUMBER_PATTERN = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
INFINITY_PATTERN = r"(?i)^\s*[+-]?inf(inity)?\s*$"
# A backfill over files puts every record in the window of this instant: its objects are read in no time order, so
# its windows fire only when the input ends anyway, and one window keeps every replay and duplicate with its first.
BACKFILL_EVENT_MS = 0
# A watermark that never passes an event: a backfill over files fires its windows when the input ends (its objects
# are read in no time order); on Kafka, what an event that does not move the watermark contributes.
NEVER_MS = -62135596800000  # 0001-01-01T00:00:00Z
MAX_RANK = 2_147_483_647
MAX_INTERVAL_DAYS = 100
# Window Top-N needs a tumbling window; every member of a dedupe group has the same event time, so its size
# bounds only how long rows wait for the watermark, never which rows are duplicates.
DEDUPE_WINDOW = "INTERVAL '1' MINUTE"
# Epoch milliseconds of a timestamp text as the batch validator reads it (Arrow's strptime, then pandas' ISO 8601
# parser), NULL where it reads none: a Java function, so the job runs in the JVM alone (scripts/flink-udf).
TIMESTAMP_UDF = "clinops_parse_timestamp"
JAVA_FUNCTIONS = {TIMESTAMP_UDF: "io.clinops.flink.ParseTimestamp"}


class SourceKind(StrEnum):
    FILES = "files"
    KAFKA = "kafka"


@dataclass(frozen=True)
class JobSpec:
    """Where the job reads and writes; ``lake_uri`` is what Flink's filesystems take (file:///… or s3://…)."""

    lake_uri: str
    source: SourceKind = SourceKind.FILES
    bootstrap: str | None = None
    group_id: str = "clinops-bronze-to-silver"
    bounded: bool = False
    lateness_s: int = 300
    kinds: tuple[EventType, ...] = tuple(EventType)
    sink_options: dict[str, str] = field(default_factory=dict)


def quote(name: str) -> str:
    return f"`{name}`"


def literal(text: str) -> str:
    """A SQL string literal; outside printable ASCII as a Unicode literal of UTF-16 code units (Java's own).

    ``\\XXXX`` takes four hex digits, so a character beyond the BMP is written as its surrogate pair.
    """
    if all(" " <= c <= "~" for c in text):
        return "'" + text.replace("'", "''") + "'"
    units = text.encode("utf-16-be", "surrogatepass")
    escaped = []
    for i in range(0, len(units), 2):
        unit = int.from_bytes(units[i : i + 2], "big")
        char = chr(unit)
        escaped.append(char if " " <= char <= "~" and char not in "\\'" else f"\\{unit:04x}")
    return "U&'" + "".join(escaped) + "'"


def number(value: float) -> str:
    return f"CAST({float(value)!r} AS DOUBLE)"


def interval(seconds: int) -> str:
    """A day-time interval literal (a bare SECOND interval takes two digits only; the days, two as well)."""
    if not 0 <= seconds < MAX_INTERVAL_DAYS * 86400:
        raise ValueError(f"interval of {seconds} s outside 0 s to {MAX_INTERVAL_DAYS} days")
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    return f"INTERVAL '{days} {hour:02d}:{minute:02d}:{second:02d}' DAY TO SECOND"


def _whitespace() -> str:
    """The characters the batch path strips from text (Arrow's utf8_trim_whitespace), asked of Arrow itself."""
    candidates = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() or chr(c) == "\u200b"]
    stripped = pc.utf8_trim_whitespace(pa.array([f"{c}x{c}" for c in candidates])).to_pylist()
    return "".join(c for c, text in zip(candidates, stripped, strict=True) if text == "x")


WHITESPACE = _whitespace()


def _col(prefix: str, name: str) -> str:
    return quote(f"{prefix}_{name}")


def text(name: str) -> str:
    """The stripped text of a raw field (``x_<name>``)."""
    return _col("x", name)


def num(name: str) -> str:
    """The number a raw field holds, NULL when it holds none (``n_<name>``)."""
    return _col("n", name)


def present(name: str) -> str:
    """Whether a text field holds more than whitespace (``p_<name>``): never NULL, so negating it is safe."""
    return _col("p", name)


def one_of(expr: str, values: Sequence[str]) -> str:
    """Membership that is FALSE, never NULL, for a NULL ``expr``."""
    if not values:
        return "FALSE"
    return "(" + " OR ".join(f"{expr} IS NOT DISTINCT FROM {literal(v)}" for v in values) + ")"


def _numeric_fields(kind: EventType) -> tuple[str, ...]:
    return tuple(name for name in RAW_FIELDS[kind] if name not in TEXT_FIELDS[kind])


def _text_fields(kind: EventType) -> tuple[str, ...]:
    return (*ENVELOPE_FIELDS, *TEXT_FIELDS[kind])


def _parse_number(raw: str) -> str:
    return (
        f"CASE WHEN REGEXP({raw}, {literal(NUMBER_PATTERN)}) THEN TRY_CAST({raw} AS DOUBLE) "
        f"WHEN REGEXP({raw}, {literal(INFINITY_PATTERN)}) THEN "
        f"CASE WHEN REGEXP({raw}, '^\\s*-') THEN CAST('-Infinity' AS DOUBLE) ELSE CAST('Infinity' AS DOUBLE) END END"
    )


def _strip(raw: str) -> str:
    return f"TRIM(BOTH {literal(WHITESPACE)} FROM {raw})"


def _timestamp_ms(raw_timestamp: str) -> str:
    return f"{TIMESTAMP_UDF}({_strip(raw_timestamp)})"


# --- the rules, in the order the batch validator adds its reasons -------------------------------------------


@dataclass(frozen=True)
class TypedRules:
    """Reasons as (label, condition), silver columns as (name, expression), and the quality inputs."""

    reasons: list[tuple[str, str]]
    columns: list[tuple[str, str]]
    unit_converted: str
    unit_inferred: str
    quality: str


def _not_numeric(kind: EventType) -> list[tuple[str, str]]:
    return [
        (f"not_numeric:{name}", f"{quote(name)} IS NOT NULL AND {num(name)} IS NULL") for name in _numeric_fields(kind)
    ]


def _outside(value: str, low: float, high: float) -> str:
    return f"{value} IS NOT NULL AND ({value} < {number(low)} OR {value} > {number(high)})"


def _converted_value(value: str, unit: str, conversions: dict[str, tuple[float, float]]) -> str:
    """The canonical value: rounded to 6 places like the batch path, so a limit in one unit is one in the other."""
    if not conversions:
        return value
    branches = " ".join(
        f"WHEN {literal(alt)} THEN ROUND({value} * {number(scale)} + {number(offset)}, 6)"
        for alt, (scale, offset) in conversions.items()
    )
    return f"CASE {unit} {branches} ELSE {value} END"


def _vitals() -> TypedRules:
    temperature = VITALS_BY_NAME["temperature"]
    assert temperature.infer_unit_when is not None
    inferred, low, high = temperature.infer_unit_when
    raw_unit, value = text("temperature_unit"), num("temperature")
    unlabelled = f"({raw_unit} IS NULL AND {value} IS NOT NULL)"
    unit = (
        f"(CASE WHEN {unlabelled} AND {value} BETWEEN {number(low)} AND {number(high)} THEN {literal(inferred)} "
        f"WHEN {unlabelled} THEN {literal(temperature.unit)} ELSE {raw_unit} END)"
    )
    canonical = {m.name: num(m.name) for m in VITAL_SIGNS}
    canonical["temperature"] = f"({_converted_value(value, unit, temperature.conversions)})"
    known = one_of(unit, [temperature.unit, *temperature.conversions])
    converted = one_of(unit, list(temperature.conversions))
    reasons = _not_numeric(EventType.VITALS)
    reasons.append(("unknown_unit:temperature", f"{value} IS NOT NULL AND NOT {known}"))
    reasons += [(f"out_of_range:{m.name}", _outside(canonical[m.name], m.hard_min, m.hard_max)) for m in VITAL_SIGNS]
    reasons.append(("no_measurements", " AND ".join(f"{num(m.name)} IS NULL" for m in VITAL_SIGNS)))
    reasons.append(("diastolic_not_below_systolic", f"{num('diastolic_bp')} >= {num('systolic_bp')}"))
    systolic, diastolic, heart_rate = num("systolic_bp"), num("diastolic_bp"), num("heart_rate")
    pulse_pressure = f"({systolic} - {diastolic})"
    columns = [(m.name, canonical[m.name]) for m in VITAL_SIGNS]
    columns += [
        ("pulse_pressure", pulse_pressure),
        ("mean_arterial_pressure", f"{diastolic} + {pulse_pressure} / 3"),
        ("shock_index", f"{heart_rate} / {systolic}"),
    ]
    present_count = " + ".join(f"CASE WHEN {num(m.name)} IS NULL THEN 0 ELSE 1 END" for m in VITAL_SIGNS)
    return TypedRules(
        reasons=reasons,
        columns=columns,
        unit_converted=f"({converted} AND NOT {unlabelled})",
        unit_inferred=unlabelled,
        quality=f"CAST({present_count} AS DOUBLE) / {len(VITAL_SIGNS)}",
    )


def _labs() -> TypedRules:
    test, unit, value = text("test"), text("unit"), num("value")
    reasons: list[tuple[str, str]] = [
        ("missing_field:test", f"NOT {present('test')}"),
        ("unknown_test", f"{present('test')} AND NOT {one_of(test, [m.name for m in LAB_TESTS])}"),
        *_not_numeric(EventType.LAB_RESULT),
        ("missing_field:value", f"{quote('value')} IS NULL"),
        ("missing_field:unit", f"NOT {present('unit')}"),
    ]
    canonical_value = "CASE " + " ".join(
        f"WHEN {test} = {literal(m.name)} THEN {_converted_value(value, unit, m.conversions)}" for m in LAB_TESTS
    )
    canonical_value += f" ELSE {value} END"
    converted_units = "CASE " + " ".join(
        f"WHEN {test} = {literal(m.name)} THEN {one_of(unit, list(m.conversions))}" for m in LAB_TESTS
    )
    converted_units += " ELSE FALSE END"
    for m in LAB_TESTS:
        is_test = f"{test} = {literal(m.name)}"
        known = one_of(unit, [m.unit, *m.conversions])
        reasons.append((f"unknown_unit:{m.name}", f"{is_test} AND {present('unit')} AND NOT {known}"))
    # One reason label for every test's range, as the batch path names the field, not the test.
    range_checks = " OR ".join(
        f"({test} = {literal(m.name)} AND {_outside(f'({canonical_value})', m.hard_min, m.hard_max)})"
        for m in LAB_TESTS
    )
    reasons.append(("out_of_range:value", range_checks))
    canonical_unit = "CASE " + " ".join(f"WHEN {test} = {literal(m.name)} THEN {literal(m.unit)}" for m in LAB_TESTS)
    canonical_unit += " END"
    return TypedRules(
        reasons=reasons,
        columns=[("test", test), ("value", f"({canonical_value})"), ("unit", canonical_unit)],
        unit_converted=f"({converted_units})",
        unit_inferred="FALSE",
        quality="1.0E0",
    )


def _medications() -> TypedRules:
    drug_class, dose_unit, dose = text("drug_class"), text("dose_unit"), num("dose")
    expected = "CASE " + " ".join(
        f"WHEN {drug_class} = {literal(name)} THEN {literal(spec[1])}" for name, spec in MEDICATIONS.items()
    )
    expected = f"({expected} END)"
    max_dose = "CASE " + " ".join(
        f"WHEN {drug_class} = {literal(name)} THEN {number(spec[3])}" for name, spec in MEDICATIONS.items()
    )
    max_dose = f"({max_dose} END)"
    conversions = [
        (f"({one_of(dose_unit, [source])} AND {one_of(expected, [target])})", factor)
        for (source, target), factor in DOSE_UNIT_CONVERSIONS.items()
    ]
    converted = " OR ".join(condition for condition, _ in conversions) or "FALSE"
    canonical = (
        "(CASE "
        + " ".join(f"WHEN {condition} THEN {dose} * {number(factor)}" for condition, factor in conversions)
        + f" ELSE {dose} END)"
    )
    known = f"({present('drug_class')} AND {one_of(drug_class, list(MEDICATIONS))})"
    reasons: list[tuple[str, str]] = [
        ("missing_field:drug_class", f"NOT {present('drug_class')}"),
        ("unknown_drug_class", f"{present('drug_class')} AND NOT {known}"),
        *_not_numeric(EventType.MEDICATION),
        ("missing_field:dose", f"{quote('dose')} IS NULL"),
        ("unknown_unit:dose", f"{known} AND {dose_unit} IS DISTINCT FROM {expected} AND NOT ({converted})"),
        (
            "out_of_range:dose",
            f"{canonical} IS NOT NULL AND {known} AND ({canonical} <= 0 OR {canonical} > {max_dose})",
        ),
        ("unknown_route", f"{present('route')} AND NOT {one_of(text('route'), MEDICATION_ROUTES)}"),
    ]
    return TypedRules(
        reasons=reasons,
        columns=[
            ("drug_class", drug_class),
            ("drug", text("drug")),
            ("dose", canonical),
            ("dose_unit", expected),
            ("route", text("route")),
        ],
        unit_converted=f"({converted})",
        unit_inferred="FALSE",
        # The route is optional in the record but expected; its absence lowers quality.
        quality=f"CASE WHEN {present('route')} THEN 1.0E0 ELSE 0.8E0 END",
    )


def _adverse_events() -> TypedRules:
    kind, grade = text("kind"), num("grade")
    low, high = ADVERSE_GRADE_RANGE
    reasons: list[tuple[str, str]] = [
        ("missing_field:kind", f"NOT {present('kind')}"),
        ("unknown_kind", f"{present('kind')} AND NOT {one_of(kind, ADVERSE_EVENT_KINDS)}"),
        *_not_numeric(EventType.ADVERSE_EVENT),
        ("missing_field:grade", f"{quote('grade')} IS NULL"),
        (
            "out_of_range:grade",
            f"{grade} IS NOT NULL AND NOT ({grade} BETWEEN {number(low)} AND {number(high)} "
            f"AND {grade} = ROUND({grade}, 0))",
        ),
    ]
    return TypedRules(
        reasons=reasons,
        columns=[("kind", kind), ("grade", f"CAST({grade} AS TINYINT)")],
        unit_converted="FALSE",
        unit_inferred="FALSE",
        quality="1.0E0",
    )


TYPED_RULES = {
    EventType.VITALS: _vitals,
    EventType.LAB_RESULT: _labs,
    EventType.MEDICATION: _medications,
    EventType.ADVERSE_EVENT: _adverse_events,
}


def envelope_reasons(kind: EventType) -> list[tuple[str, str]]:
    reasons = [(f"missing_field:{name}", f"NOT {present(name)}") for name in ENVELOPE_FIELDS if name != "event_type"]
    reasons.append(("wrong_event_type", f"{present('event_type')} AND {text('event_type')} <> {literal(kind.value)}"))
    reasons.append(("invalid_timestamp", f"{present('timestamp')} AND {quote('ts')} IS NULL"))
    return reasons


def all_reasons(kind: EventType) -> list[tuple[str, str]]:
    return envelope_reasons(kind) + TYPED_RULES[kind]().reasons


def is_valid(reasons: list[tuple[str, str]]) -> str:
    """For two-valued conditions (the rule columns)."""
    return "NOT (" + " OR ".join(condition for _, condition in reasons) + ")"


def reasons_json(reasons: list[tuple[str, str]]) -> str:
    """A JSON array of the reasons that hold, in rule order (JSON_ARRAY leaves NULL elements out)."""
    items = ", ".join(f"CASE WHEN {condition} THEN {literal(label)} END" for label, condition in reasons)
    return f"JSON_ARRAY({items} ABSENT ON NULL)"


# --- tables ------------------------------------------------------------------------------------------------

_FLINK_TYPES = {
    pa.string(): "STRING",
    pa.float64(): "DOUBLE",
    pa.int8(): "TINYINT",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("ms", tz="UTC"): "TIMESTAMP_LTZ(3)",
}


def silver_columns_ddl(kind: EventType) -> str:
    """Silver's columns as Flink types, from the batch path's Parquet schema."""
    lines = []
    for f in silver_schema(kind):
        flink_type = _FLINK_TYPES[f.type]
        lines.append(f"{quote(f.name)} {flink_type}{'' if f.nullable else ' NOT NULL'}")
    return ", ".join(lines)


def with_options(options: Mapping[str, str]) -> str:
    return "WITH (" + ", ".join(f"{literal(k)} = {literal(v)}" for k, v in options.items()) + ")"


def entity(kind: EventType) -> str:
    return ENTITY_BY_EVENT_TYPE[kind]


def function_ddl() -> list[str]:
    return [
        f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS {literal(cls)} LANGUAGE JAVA"
        for name, cls in JAVA_FUNCTIONS.items()
    ]


def _object_columns(kind: EventType) -> list[str]:
    """Where a bronze object's records arrived, from its key (DESIGN §6), computed where it is read.

    ``<topic>-<partition>-<first offset>-<last offset>.jsonl`` under ``…/date=<date>/hour=<hour>/``: only these
    short values cross the shuffle that numbers the lines, not the object's path.
    """
    dashes = TOPIC_BY_EVENT_TYPE[kind].count("-")
    # The date folder ends 9 characters (/hour=HH/) before the object's name.
    date_start = "CHAR_LENGTH(`path`) - CHAR_LENGTH(`file_name`) - 18"
    return [
        f"`arrival_partition` AS CAST(SPLIT_INDEX(`file_name`, '-', {dashes + 1}) AS INT)",
        f"`first_offset` AS CAST(SPLIT_INDEX(`file_name`, '-', {dashes + 2}) AS BIGINT)",
        "`origin_object` AS SUBSTRING(`file_name` FROM 1 FOR CHAR_LENGTH(`file_name`) - 6)",
        f"`origin_date` AS SUBSTRING(`path` FROM {date_start} FOR 10)",
    ]


def source_ddl(kind: EventType, spec: JobSpec) -> str:
    """The bronze stream of one event type: raw fields as text, stripped, numbers and the timestamp parsed here.

    What is parsed here crosses the shuffle as values: Flink evaluates an expression again wherever a later view
    names it, so a derived column is only computed once if it is computed before a shuffle or a window.
    """
    physical = [f"{quote(name)} STRING" for name in (*ENVELOPE_FIELDS, *RAW_FIELDS[kind])]
    computed = [f"{text(name)} AS {_strip(quote(name))}" for name in _text_fields(kind)]
    computed += [f"{num(name)} AS {_parse_number(quote(name))}" for name in _numeric_fields(kind)]
    computed.append(f"`ts_ms` AS {_timestamp_ms(quote('timestamp'))}")
    if spec.source is SourceKind.FILES:
        metadata = [
            "`path` STRING NOT NULL METADATA FROM 'file.path' VIRTUAL",
            "`file_name` STRING NOT NULL METADATA FROM 'file.name' VIRTUAL",
        ]
        computed += _object_columns(kind)
        event_time = f"TO_TIMESTAMP_LTZ({BACKFILL_EVENT_MS}, 3)"
        watermark = f"TO_TIMESTAMP_LTZ({NEVER_MS}, 3)"
        options = {
            "connector": "filesystem",
            "path": f"{spec.lake_uri}/{bronze_prefix(TOPIC_BY_EVENT_TYPE[kind]).rstrip('/')}",
            "source.path.regex-pattern": r".*\.jsonl",
        }
    else:
        metadata = [
            "`kafka_partition` INT NOT NULL METADATA FROM 'partition' VIRTUAL",
            "`kafka_offset` BIGINT NOT NULL METADATA FROM 'offset' VIRTUAL",
            "`arrival` TIMESTAMP_LTZ(3) NOT NULL METADATA FROM 'timestamp' VIRTUAL",
        ]
        # An event whose timestamp reads as none is windowed by its arrival; only payload times move the watermark:
        # an arrival time may be far ahead of the events when a backlog is replayed, and would make every later
        # event late.
        payload = _timestamp_ms(quote("timestamp"))
        event_time = f"COALESCE(TO_TIMESTAMP_LTZ({payload}, 3), `arrival`)"
        watermark = (
            f"CASE WHEN {payload} IS NOT NULL THEN `event_time` - {interval(spec.lateness_s)} "
            f"ELSE TO_TIMESTAMP_LTZ({NEVER_MS}, 3) END"
        )
        if not spec.bootstrap:
            raise ValueError("a Kafka source needs bootstrap servers")
        options = {
            "connector": "kafka",
            "topic": TOPIC_BY_EVENT_TYPE[kind],
            "properties.bootstrap.servers": spec.bootstrap,
            "properties.group.id": spec.group_id,
            "properties.auto.offset.reset": "earliest",
            "scan.startup.mode": "group-offsets",
        }
        if spec.bounded:
            options["scan.bounded.mode"] = "latest-offset"
    options.update({"format": "json", "json.ignore-parse-errors": "true"})
    columns = [*physical, *metadata, *computed, f"`event_time` AS {event_time}"]
    columns.append(f"WATERMARK FOR `event_time` AS {watermark}")
    body = ",\n  ".join(columns)
    return f"CREATE TABLE {quote('bronze_' + entity(kind))} (\n  {body}\n) {with_options(options)}"


def silver_sink_ddl(kind: EventType, spec: JobSpec) -> str:
    options = {
        "connector": "filesystem",
        "path": f"{spec.lake_uri}/{silver_prefix(entity(kind)).rstrip('/')}",
        "format": "parquet",
        "parquet.write.int64.timestamp": "true",
        "parquet.timestamp.time.unit": "millis",
        # A day is complete once the watermark passes its end: _SUCCESS marks it (hidden from lake readers).
        "sink.partition-commit.trigger": "partition-time",
        "partition.time-extractor.timestamp-pattern": "$date 00:00:00",
        "sink.partition-commit.delay": "1 d",
        "sink.partition-commit.watermark-time-zone": "UTC",
        "sink.partition-commit.policy.kind": "success-file",
        **spec.sink_options,
    }
    return (
        f"CREATE TABLE {quote('silver_' + entity(kind))} ({silver_columns_ddl(kind)}, `date` STRING) "
        f"PARTITIONED BY (`date`) {with_options(options)}"
    )


def quarantine_sink_ddl(kind: EventType, spec: JobSpec) -> str:
    options = {
        "connector": "filesystem",
        "path": f"{spec.lake_uri}/{QUARANTINE}/{entity(kind)}",
        "format": "raw",
        # Quarantine is small: one writer keeps it to a file per day and checkpoint.
        "sink.parallelism": "1",
        **spec.sink_options,
    }
    table = quote("quarantine_" + entity(kind))
    return f"CREATE TABLE {table} (`entry` STRING, `date` STRING) PARTITIONED BY (`date`) {with_options(options)}"


# --- the pipeline ------------------------------------------------------------------------------------------


def origin_columns(kind: EventType, spec: JobSpec) -> list[str]:
    """Arrival order (partition, position) and where the quarantine says a record came from."""
    if spec.source is SourceKind.KAFKA:
        return [
            "`kafka_partition` AS `arrival_partition`",
            "`kafka_offset` AS `arrival_position`",
            "DATE_FORMAT(`arrival`, 'yyyy-MM-dd') AS `origin_date`",
        ]
    # <topic>-<partition>-<first offset>-<last offset>.jsonl, under …/date=<date>/hour=<hour>/ (DESIGN §6).
    dashes = TOPIC_BY_EVENT_TYPE[kind].count("-")
    return [
        f"CAST(SPLIT_INDEX(`file_name`, '-', {dashes + 1}) AS INT) AS `arrival_partition`",
        # Offsets of one partition's objects never overlap, so first offset + line orders a partition's records.
        f"CAST(SPLIT_INDEX(`file_name`, '-', {dashes + 2}) AS BIGINT) + `line_count` - 1 AS `arrival_position`",
        "SUBSTRING(`path` FROM POSITION('/date=' IN `path`) + 6 FOR 10) AS `origin_date`",
        "SUBSTRING(`file_name` FROM 1 FOR CHAR_LENGTH(`file_name`) - 6) AS `origin_object`",
        "`line_count` - 1 AS `origin_line`",
    ]


def origin_json(spec: JobSpec) -> str:
    if spec.source is SourceKind.KAFKA:
        return "JSON_OBJECT(KEY 'partition' VALUE `arrival_partition`, KEY 'offset' VALUE `arrival_position`)"
    return "JSON_OBJECT(KEY 'object' VALUE `origin_object`, KEY 'line' VALUE `origin_line`)"


def _origin_names(spec: JobSpec) -> list[str]:
    return [column.rpartition(" AS ")[2] for column in origin_columns(EventType.VITALS, spec)]


def _carried(kind: EventType) -> list[str]:
    fields = [quote(name) for name in _raw_fields(kind)]
    fields += [text(name) for name in _text_fields(kind)]
    fields += [num(name) for name in _numeric_fields(kind)]
    return fields


def _arrival_columns(spec: JobSpec) -> list[str]:
    """Arrival order (partition, position) and where the quarantine says a record came from, as ``origin_columns``
    names them, from the columns the source computed."""
    if spec.source is SourceKind.KAFKA:
        return origin_columns(EventType.VITALS, spec)
    return [
        "`arrival_partition`",
        # Offsets of one partition's objects never overlap, so first offset + line orders a partition's records.
        "`first_offset` + `line_count` - 1 AS `arrival_position`",
        "`origin_date`",
        "`origin_object`",
        "`line_count` - 1 AS `origin_line`",
    ]


_OBJECT_NAMES = ("`arrival_partition`", "`first_offset`", "`origin_object`", "`origin_date`")


def _raw_fields(kind: EventType) -> tuple[str, ...]:
    return (*ENVELOPE_FIELDS, *RAW_FIELDS[kind])


def _entry(reasons: str, record: str, spec: JobSpec) -> str:
    origin = origin_json(spec)
    return f"JSON_OBJECT(KEY 'reasons' VALUE {reasons}, KEY 'origin' VALUE {origin}, KEY 'record' VALUE {record})"


def _raw_record(kind: EventType) -> str:
    """An invalid record as read: its fields as text (bronze keeps its bytes, at the origin)."""
    pairs = ", ".join(f"KEY {literal(name)} VALUE {quote(name)}" for name in _raw_fields(kind))
    return f"JSON_OBJECT({pairs} NULL ON NULL)"


def _silver_record(kind: EventType) -> str:
    """A duplicate is valid: it is shown as standardised, like the silver row it duplicates."""
    pairs = []
    for f in silver_schema(kind):
        value = quote(f.name)
        if f.name == "timestamp":
            value = f"DATE_FORMAT({value}, {literal(CANONICAL_TIMESTAMP)})"
        pairs.append(f"KEY {literal(f.name)} VALUE {value}")
    return f"JSON_OBJECT({', '.join(pairs)} NULL ON NULL)"


def pipeline(kind: EventType, spec: JobSpec) -> tuple[list[tuple[str, str]], list[str]]:
    """Views, then the two INSERTs (silver, quarantine) of one event type."""
    name = entity(kind)
    bronze, carried = quote("bronze_" + name), ", ".join(_carried(kind))
    views: list[tuple[str, str]] = []

    def view(suffix: str, query: str) -> str:
        views.append((f"{name}_{suffix}", query))
        return quote(f"{name}_{suffix}")

    if spec.source is SourceKind.FILES:
        # A file is one split read in order by one reader: counting per file in arrival order numbers its lines.
        counted = view(
            "numbered",
            f"SELECT *, COUNT(*) OVER (PARTITION BY `origin_object` ORDER BY `read_at` "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS `line_count` "
            f"FROM (SELECT {carried}, `ts_ms`, {', '.join(_OBJECT_NAMES)}, `event_time`, PROCTIME() AS `read_at` "
            f"FROM {bronze})",
        )
    else:
        counted = bronze
    origin = ", ".join(_arrival_columns(spec))
    # Presence reads the stripped text, so it is cheap to evaluate again wherever a rule names it.
    presence = ", ".join(f"({text(name)} <> '') IS TRUE AS {present(name)}" for name in _text_fields(kind))
    timed = view(
        "timed",
        f"SELECT {carried}, {presence}, `event_time`, TO_TIMESTAMP_LTZ(`ts_ms`, 3) AS `ts`, {origin} FROM {counted}",
    )
    # Each rule is evaluated once, into a column; everything downstream reads the columns.
    rules = all_reasons(kind)
    checked = view(
        "checked",
        f"SELECT *, {', '.join(f'({condition}) IS TRUE AS `rule_{i}`' for i, (_, condition) in enumerate(rules))} "
        f"FROM {timed}",
    )
    reasons = [(label, f"`rule_{i}`") for i, (label, _) in enumerate(rules)]
    quarantined: list[str] = []
    windowed_input = checked
    if spec.source is SourceKind.KAFKA:
        late = "FLOOR(`event_time` TO MINUTE) + INTERVAL '1' MINUTE <= CURRENT_WATERMARK(`event_time`)"
        windowed_input = view("on_time", f"SELECT * FROM {checked} WHERE ({late}) IS NOT TRUE")
        late_reasons = reasons_json([*reasons, ("late", "TRUE")])
        quarantined.append(
            f"SELECT {_entry(late_reasons, _raw_record(kind), spec)} AS `entry`, `origin_date` AS `date` "
            f"FROM {checked} WHERE ({late}) IS TRUE"
        )
    windowed = view(
        "windowed", f"SELECT * FROM TABLE(TUMBLE(TABLE {windowed_input}, DESCRIPTOR(`event_time`), {DEDUPE_WINDOW}))"
    )
    # Every invalid record is quarantined, a replayed one each time it came, as in the batch path.
    quarantined.append(
        f"SELECT {_entry(reasons_json(reasons), _raw_record(kind), spec)} AS `entry`, `origin_date` AS `date` "
        f"FROM {windowed} WHERE NOT ({is_valid(reasons)})"
    )
    typed = TYPED_RULES[kind]()
    factor = (
        f"CASE WHEN {typed.unit_inferred} THEN {number(UNIT_INFERRED_FACTOR)} "
        f"WHEN {typed.unit_converted} THEN {number(UNIT_CONVERTED_FACTOR)} ELSE 1.0E0 END"
    )
    silver_values = [
        f"{text('event_id')} AS `event_id`",
        f"{text('patient_id')} AS `patient_id`",
        f"{text('encounter_id')} AS `encounter_id`",
        "`ts` AS `timestamp`",
        f"{text('source')} AS `source`",
        *(f"{expr} AS {quote(column)}" for column, expr in typed.columns),
        f"({typed.quality}) * ({factor}) AS `quality_score`",
        f"{typed.unit_converted} AS `unit_converted`",
        f"{typed.unit_inferred} AS `unit_inferred`",
    ]
    assert [c for c, _ in typed.columns] == list(SILVER_COLUMNS[kind])
    assert len(QUALITY_COLUMNS) == 3
    # Only what the rankings and sinks read crosses the shuffles and sits in window state.
    shaped = view(
        "shaped",
        f"SELECT {is_valid(reasons)} AS `valid`, {', '.join(silver_values)}, {', '.join(_origin_names(spec))}, "
        f"`window_start`, `window_end`, `window_time` FROM {windowed}",
    )
    # The first arrival of each event id among all records; a later one is a transport replay, dropped.
    first = view(
        "first_arrivals",
        f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY `window_start`, `window_end`, `event_id` "
        f"ORDER BY `arrival_partition`, `arrival_position`) AS `replay_rank` FROM {shaped}) "
        f"WHERE `replay_rank` = 1",
    )
    discriminator = DEDUPE_DISCRIMINATOR[kind]
    key = ", ".join(quote(c) for c in ("patient_id", "timestamp", "source", *filter(None, [discriminator])))
    ranked = view(
        "ranked",
        f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY `window_start`, `window_end`, {key} "
        f"ORDER BY `arrival_partition`, `arrival_position`) AS `duplicate_rank` FROM {first} WHERE `valid`) "
        f"WHERE `duplicate_rank` <= {MAX_RANK}",
    )
    duplicate = reasons_json([("duplicate", "TRUE")])
    quarantined.append(
        f"SELECT {_entry(duplicate, _silver_record(kind), spec)} AS `entry`, `origin_date` AS `date` "
        f"FROM {ranked} WHERE `duplicate_rank` > 1"
    )
    silver_names = ", ".join(quote(f.name) for f in silver_schema(kind))
    inserts = [
        f"INSERT INTO {quote('silver_' + name)} SELECT {silver_names}, DATE_FORMAT(`timestamp`, 'yyyy-MM-dd') "
        f"FROM {ranked} WHERE `duplicate_rank` = 1",
        f"INSERT INTO {quote('quarantine_' + name)} " + " UNION ALL ".join(quarantined),
    ]
    return views, inserts


@dataclass(frozen=True)
class Statements:
    """Functions and tables, then views (name, query) in dependency order, then the INSERTs that make one job."""

    tables: list[str]
    views: list[tuple[str, str]]
    inserts: list[str]

    def script(self) -> str:
        """The job as one SQL script (what a SQL client or a FlinkDeployment's SQL runner would take)."""
        views = [f"CREATE TEMPORARY VIEW {quote(name)} AS {query}" for name, query in self.views]
        inserts = ["EXECUTE STATEMENT SET BEGIN", *(f"{insert};" for insert in self.inserts), "END"]
        return ";\n\n".join([*self.tables, *views]) + ";\n\n" + "\n".join(inserts) + ";\n"


def statements(spec: JobSpec) -> Statements:
    result = Statements(tables=function_ddl(), views=[], inserts=[])
    for kind in spec.kinds:
        result.tables.extend([source_ddl(kind, spec), silver_sink_ddl(kind, spec), quarantine_sink_ddl(kind, spec)])
        views, inserts = pipeline(kind, spec)
        result.views.extend(views)
        result.inserts.extend(inserts)
    return result
