from __future__ import annotations

import argparse
import math
import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinops.monitoring.bins import bin_index_rules, counts_from_rows, window_counts
from clinops.monitoring.drift import drift_report
from clinops.monitoring.profile import reference_profile
from clinops.streaming.flink.drift_sql import (
    EDGES_PER_OPERATOR,
    MAX_DOUBLE,
    TESTS_PER_OPERATOR,
    Binning,
    DriftSpec,
    add_drift_parser,
    block_search,
    block_size,
    categorical_cell,
    cell_expression,
    cell_offsets,
    count_true,
    decode_cells,
    double_literal,
    drift_options,
    edge_search,
    interval,
    numeric_cell,
    opaque,
    statements,
    window_bounds,
)
from clinops.streaming.flink.silver_sql import SourceKind

RNG = np.random.default_rng(7)
TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?(?:E-?\d+)?)|(?P<text>U&'(?:[^']|'')*'|'(?:[^']|'')*')"
    r"|(?P<column>`[^`]+`)|(?P<op><=|>=|<|=|\+|\*|\[|\])|(?P<word>[A-Z_]+))"
)
COMPARISONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
}


class SqlExpr:
    """Evaluates the generated expressions as Flink would: a small interpreter of the SQL they are made of.

    Grammar: sums and products of integers, literals, columns, 1-based ``array[index]`` (NULL past either end) and
    ``CASE (WHEN cond THEN expr)+ [ELSE expr] END``; ``cond`` joins ``expr IS NULL`` and ``expr op expr`` with AND /
    OR. NULL propagates through arithmetic and comparisons, NaN compares false (Java doubles), and a condition
    holds only when true, as in SQL. Columns take their values from the environment, by name.
    """

    def __init__(self, sql: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(sql.rstrip()):
            match = TOKEN.match(sql, position)
            assert match is not None, f"unexpected SQL at {sql[position : position + 40]!r}"
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0
        self.env: dict[str, Any] = {}

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        self.position += 1
        return token

    def _expect(self, kind: str, text: str) -> None:
        assert self._next() == (kind, text)

    def evaluate(self, **env: Any) -> Any:
        self.position = 0
        self.env = {f"`{name}`": value for name, value in env.items()}
        result = self._sum()
        assert self.position == len(self.tokens)
        return result

    def _sum(self) -> Any:
        total = self._product()
        while self._peek() == ("op", "+"):
            self._next()
            right = self._product()
            total = None if total is None or right is None else total + right
        return total

    def _product(self) -> Any:
        total = self._postfix()
        while self._peek() == ("op", "*"):
            self._next()
            right = self._postfix()
            total = None if total is None or right is None else total * right
        return total

    def _postfix(self) -> Any:
        value = self._primary()
        while self._peek() == ("op", "["):
            self._next()
            index = self._sum()
            self._expect("op", "]")
            value = value[index - 1] if value is not None and index is not None and 1 <= index <= len(value) else None
        return value

    def _primary(self) -> Any:
        kind, text = self._next()
        if kind == "number":
            return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
        if kind == "text":
            return _literal(text)
        if kind == "column":
            return self.env[text]
        assert (kind, text) == ("word", "CASE")
        chosen: Any = None
        decided = False
        while self._peek() == ("word", "WHEN"):
            self._next()
            holds = self._condition()
            self._expect("word", "THEN")
            branch = self._sum()  # every branch is parsed, so the token stream stays in step
            if not decided and holds:
                chosen, decided = branch, True
        otherwise = None
        if self._peek() == ("word", "ELSE"):
            self._next()
            otherwise = self._sum()
        self._expect("word", "END")
        return chosen if decided else otherwise

    def _condition(self) -> bool:
        holds = self._conjunction()
        while self._peek() == ("word", "OR"):
            self._next()
            holds = self._conjunction() or holds
        return holds

    def _conjunction(self) -> bool:
        holds = self._atom()
        while self._peek() == ("word", "AND"):
            self._next()
            holds = self._atom() and holds
        return holds

    def _atom(self) -> bool:
        left = self._sum()
        if self._peek() == ("word", "IS"):
            self._next()
            self._expect("word", "NULL")
            return left is None
        _, op = self._next()
        right = self._sum()
        if left is None or right is None:
            return False
        return bool(COMPARISONS[op](left, right))


def _literal(text: str) -> str:
    if text.startswith("U&"):
        units = re.sub(r"\\([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), text[3:-1].replace("''", "'"))
        return units.encode("utf-16-be", "surrogatepass").decode("utf-16-be")  # pairs of escapes, one character
    return text[1:-1].replace("''", "'")


def json_text(value: Any) -> str | None:
    """What a STRING column of Flink's JSON format holds for a JSON value: booleans as true / false."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def search(edges: list[float], value: float) -> int:
    """Edges <= a DOUBLE NOT NULL value by the job's two levels: the block, then the edges within it."""
    block = SqlExpr(block_search("`v`", edges)).evaluate(v=value) if edges else 0
    if not edges:
        return 0
    position: int = SqlExpr(edge_search("`v`", "`e`", "`b`", len(edges))).evaluate(v=value, e=edges, b=block)
    return position


def sql_counts(frame: pd.DataFrame, profile: dict[str, Any]) -> dict[str, Any]:
    """Counts as the job computes them: each row's cell by the generated SQL, counted per cell, then decoded."""
    rules = bin_index_rules(profile)
    offsets = cell_offsets(rules)
    cells: Counter[int] = Counter()
    for name, rule in rules.items():
        cell = SqlExpr(cell_expression("`x`", "`p`", rule, offsets[name]))
        for value in frame[name].astype(object):
            if rule["kind"] == "numeric":
                # The job reads a null number as NaN (a DOUBLE NOT NULL).
                number = math.nan if value is None or value is pd.NA else float(value)
                cells[cell.evaluate(x=number, p=search(rule["edges"], number))] += 1
            else:
                cells[cell.evaluate(x=json_text(value), p=None)] += 1
    return counts_from_rows(decode_cells(list(cells), list(cells.values()), rules), profile)


def test_double_literals_are_exact_and_finite() -> None:
    for value in [0.0, -0.0, 1.5, -2.6281631164002284e-1, 1e-300, 5e-324, MAX_DOUBLE, -MAX_DOUBLE, 123456789.0]:
        text = double_literal(value)
        assert re.fullmatch(r"-?\d+\.\d+E-?\d+", text), text
        assert float(text) == value
    for bad in [math.inf, -math.inf, math.nan]:
        with pytest.raises(ValueError, match="not a finite double"):
            double_literal(bad)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_double_literal_round_trips_any_double(value: float) -> None:
    assert float(double_literal(value)) == value


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(finite, min_size=1, max_size=70, unique=True).map(sorted),
    st.lists(st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf])), max_size=40),
    st.integers(min_value=0, max_value=5000),
)
def test_two_level_search_is_searchsorted(edges: list[float], values: list[float], offset: int) -> None:
    missing = len(edges) + 1
    cell = SqlExpr(numeric_cell("`v`", "`p`", missing, offset))
    for value in [*values, *edges, *(np.nextafter(e, -math.inf) for e in edges)]:
        expected = missing if not math.isfinite(value) else np.searchsorted(edges, value, "right")
        assert cell.evaluate(v=value, p=search(edges, value)) == offset + expected


def test_each_level_tests_about_sqrt_edges_in_log_depth() -> None:
    edges = sorted(RNG.normal(0, 1, 540))
    size = block_size(len(edges))
    assert size * size > len(edges)
    for sql in (block_search("`v`", edges), edge_search("`v`", "`e`", "`b`", len(edges))):
        depth = max_depth = 0
        for token in re.findall(r"\bCASE\b|\bEND\b", sql):
            depth += 1 if token == "CASE" else -1
            max_depth = max(max_depth, depth)
        assert max_depth <= math.ceil(math.log2(size)) + 1
        assert sql.count(" WHEN ") < size
    assert count_true([]) == "0"


def test_edge_arrays_are_hidden_from_constant_folding() -> None:
    # RAND_INTEGER(1) draws from [0, 1): the array, always, from an expression the planner does not fold.
    assert opaque("ARRAY[1.0E0]") == "CASE WHEN RAND_INTEGER(1) = 0 THEN ARRAY[1.0E0] END"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(max_size=6), min_size=1, max_size=8, unique=True).map(sorted),
    st.lists(st.one_of(st.text(max_size=6), st.none()), max_size=30),
)
def test_categorical_case_matches_pandas_text(categories: list[str], values: list[str | None]) -> None:
    k = len(categories)
    case = SqlExpr(categorical_cell("`c`", categories, k, k + 1, 10))
    for value in [*values, *categories]:
        expected = k + 1 if value is None else categories.index(value) if value in categories else k
        assert case.evaluate(c=value) == 10 + expected


def test_json_booleans_land_in_pandas_categories() -> None:
    case = SqlExpr(categorical_cell("`c`", ["False", "True"], 2, 3))
    assert [case.evaluate(c=v) for v in ["false", "true", "False", "True", "yes", None]] == [0, 1, 0, 1, 2, 3]


def test_window_counts_equal_the_sql_rule_on_a_profiled_frame() -> None:
    n = 4000
    reference = pd.DataFrame(
        {
            "heart_rate": RNG.normal(80, 10, n),
            "lactate": RNG.lognormal(0.3, 0.6, n),
            "age": RNG.integers(18, 95, n).astype(float),  # ties: cuts fall midway between distinct values
            "band": RNG.choice(["18-40", "40-65", "65+"], n),
            "flag": RNG.choice([True, False], n),
        }
    )
    profile = reference_profile(reference)
    window = pd.DataFrame(
        {
            "heart_rate": np.append(RNG.normal(90, 12, 990), [np.nan] * 10),
            "lactate": np.append(RNG.lognormal(0.5, 0.6, 995), [np.inf, -np.inf, np.nan, 1e300, -1e300]),
            # Values on the reference's own values and edges: the ties the bin rule has to settle.
            "age": np.append(RNG.integers(10, 100, 980).astype(float), profile["features"]["age"]["bin_edges"][:20]),
            "band": pd.array([*RNG.choice(["18-40", "40-65", "90+"], 990), *[None] * 10], dtype=object),
            "flag": pd.array([*RNG.choice([True, False], 995), *[None] * 5], dtype=object),
        }
    )
    expected = window_counts(window, profile)
    got = sql_counts(window, profile)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    batch = drift_report(expected, profile).to_record()
    assert drift_report(got, profile).to_record() == batch


def test_cells_name_every_feature_bin_once() -> None:
    rules = {
        "a": {"kind": "numeric", "edges": [0.0, 1.0], "missing": 3, "size": 4},
        "b": {"kind": "categorical", "categories": ["x"], "other": 1, "missing": 2, "size": 3},
    }
    assert cell_offsets(rules) == {"a": 0, "b": 4}
    rows = decode_cells(range(7), [1] * 7, rules)
    assert rows == [("a", 0, 1), ("a", 1, 1), ("a", 2, 1), ("a", 3, 1), ("b", 0, 1), ("b", 1, 1), ("b", 2, 1)]
    for cell in (-1, 7):
        with pytest.raises(ValueError, match="names no feature"):
            decode_cells([cell], [1], rules)


def test_intervals_and_window_labels() -> None:
    assert interval(600) == "INTERVAL '0 00:10:00' DAY TO SECOND"
    assert interval(2 * 86400 + 3661) == "INTERVAL '2 01:01:01' DAY TO SECOND"
    with pytest.raises(ValueError, match="outside"):
        interval(100 * 86400)
    assert window_bounds(1_700_000_400, 600) == ("2023-11-14T22:20:00+00:00", "2023-11-14T22:30:00+00:00")


def spec(**changes: Any) -> DriftSpec:
    reference = pd.DataFrame({"hr": RNG.normal(80, 10, 500), "band": RNG.choice(["a", "b"], 500)})
    options: dict[str, Any] = {
        "rules": bin_index_rules(reference_profile(reference, fine_bins=20)),
        "deployment": "risk",
        "lake_uri": "file:///lake",
    }
    return DriftSpec(**{**options, **changes})


def test_searches_run_in_bounded_operators_and_one_window_count() -> None:
    job = statements(spec(window_seconds=300, model_version="3"))
    names = [name for name, _ in job.views]
    assert names[0] == "drift_flat"
    assert names[-2:] == ["drift_cells", "drift_counts"]
    searches = names[1:-2]
    # Projections, each behind a boundary the planner keeps: blocks, then arrays, then positions.
    assert searches == [f"drift_search_{i}{suffix}" for i in range(2) for suffix in ("", "_boundary")]
    views = dict(job.views)
    # Features reach their operators as plain columns, read once per event by the UNNEST boundary.
    numeric_as_nan = "COALESCE(`e`.`features`.`hr`, CAST('NaN' AS DOUBLE))"
    assert f"UNNEST(ARRAY[ROW({numeric_as_nan}, `e`.`features`.`band`)])" in views["drift_flat"]
    assert "`model_version` = '3'" in views["drift_flat"]
    assert all("`features`" not in views[name] for name in searches)
    assert "AS `__b0`" in views["drift_search_0"]
    assert "RAND_INTEGER(1) = 0 THEN ARRAY[" in views["drift_search_0"]
    assert "`__e0`[`__b0` * " in views["drift_search_1"]
    assert "`__e0`" not in views["drift_search_1_boundary"]  # arrays stop where they are read
    assert "UNNEST(ARRAY[`s`.`__v0`])" in views["drift_search_1_boundary"]
    assert "`s`.`__v1` = 'a'" in views["drift_cells"]
    assert views["drift_counts"].count("GROUP BY `window_start`, `window_end`, `window_time`, `cell`") == 1
    assert "INTERVAL '0 00:05:00' DAY TO SECOND" in views["drift_counts"]
    assert "GROUP BY TUMBLE(`window_time`, INTERVAL '0 00:05:00' DAY TO SECOND)" in job.insert
    source, sink = job.ddl
    assert "'path' = 'file:///lake/bronze/predictions'" in source
    assert "WATERMARK FOR `event_time` AS TO_TIMESTAMP_LTZ(-62135596800000, 3)" in source
    assert "'path' = 'file:///lake/drift/risk'" in sink


def test_features_split_into_operators_within_budgets() -> None:
    edges = [float(i) for i in range(500)]
    rules = {f"x{i}": {"kind": "numeric", "edges": edges, "missing": 501, "size": 502} for i in range(20)}
    views = dict(statements(DriftSpec(rules=rules, deployment="d", lake_uri="file:///l")).views)
    searches = [sql for name, sql in views.items() if name.startswith("drift_search_") and "boundary" not in name]
    for sql in searches:
        assert sql.count(" WHEN ") <= TESTS_PER_OPERATOR + 20  # and the opaque arrays' one each
        assert sql.count("E0, ") + sql.count("E1, ") + sql.count("E2, ") <= EDGES_PER_OPERATOR
    positions = set(re.findall(r"AS `__p(\d+)`", " ".join(searches)))
    assert positions == {str(i) for i in range(20)}


def test_kafka_source_and_sink() -> None:
    job = statements(spec(source=SourceKind.KAFKA, sink=SourceKind.KAFKA, bootstrap="h:9", bounded=True))
    source, sink = job.ddl
    assert "`event_time` - INTERVAL '0 00:05:00' DAY TO SECOND" in source
    assert "'scan.bounded.mode' = 'latest-offset'" in source
    assert "'topic' = 'drift-results'" in sink
    assert "'key.fields' = 'deployment'" in sink
    assert job.insert.startswith("INSERT INTO `drift_results` SELECT 'risk', clinops_drift_report(")


def test_python_binning_is_one_udf_call_per_event() -> None:
    job = statements(spec(binning=Binning.PYTHON))
    assert [name for name, _ in job.views] == ["drift_cells", "drift_counts"]
    assert "clinops_bins(`e`.`features`.`hr`, `e`.`features`.`band`)" in dict(job.views)["drift_cells"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rules": {}}, "no features"),
        ({"window_seconds": 0}, "at least one second"),
        ({"lateness_s": -1}, "outside"),
        ({"source": SourceKind.KAFKA}, "bootstrap"),
        ({"lake_uri": None}, "needs the lake"),
    ],
)
def test_spec_refuses_what_cannot_run(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**changes)


def parse(*args: str) -> argparse.Namespace:
    root = argparse.ArgumentParser()
    add_drift_parser(root.add_subparsers(dest="job"))
    return root.parse_args(["drift", "--profile", "p.json", "--deployment", "risk", *args])


def test_drift_arguments() -> None:
    options = drift_options(
        parse("--lake", "/l", "--features", "hr, band", "--threshold", "0.01", "--set", "a=b", "--window-seconds", "60")
    )
    assert options.features == ("hr", "band")
    assert options.threshold == 0.01
    assert options.extra_config == {"a": "b"}
    assert options.sink is SourceKind.FILES
    kafka = drift_options(parse("--source", "kafka", "--bootstrap", "h:9", "--sink", "kafka"))
    assert (kafka.source, kafka.sink, kafka.lake) == (SourceKind.KAFKA, SourceKind.KAFKA, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs --lake"),
        (("--source", "kafka"), "needs --bootstrap"),
        (("--lake", "/l", "--threshold", "0"), "--threshold"),
        (("--lake", "/l", "--drift-share", "1.5"), "--drift-share"),
        (("--lake", "/l", "--parallelism", "0"), "--parallelism"),
        (("--lake", "/l", "--set", "novalue"), "KEY=VALUE"),
    ],
)
def test_drift_arguments_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        drift_options(parse(*args))


def test_plain_columns_never_share_a_name_with_a_feature() -> None:
    rule = {"kind": "numeric", "edges": [0.0], "missing": 2, "size": 3}
    rules = {"__v0": rule, "___v1": rule, "x0": rule}
    flat = dict(statements(DriftSpec(rules=rules, deployment="d", lake_uri="file:///l")).views)["drift_flat"]
    columns = re.search(r"AS `b` \((.*)\) WHERE", flat)
    assert columns is not None
    assert columns[1] == "`____v0`, `____v1`, `____v2`"
