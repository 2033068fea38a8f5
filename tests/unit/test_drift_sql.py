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
    MAX_DOUBLE,
    Binning,
    DriftSpec,
    add_drift_parser,
    categorical_cell,
    cell_expression,
    cell_offsets,
    decode_cells,
    double_literal,
    drift_options,
    interval,
    numeric_cell,
    statements,
    window_bounds,
)
from clinops.streaming.flink.silver_sql import SourceKind

RNG = np.random.default_rng(7)
TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?(?:E-?\d+)?)|(?P<text>U&'(?:[^']|'')*'|'(?:[^']|'')*')"
    r"|(?P<column>`[^`]+`)|(?P<op><=|>=|<|=)|(?P<word>[A-Z]+))"
)


class SqlCase:
    """Evaluates the generated cell expressions as Flink would: a small interpreter of the SQL they are made of.

    Grammar: ``CASE (WHEN cond THEN expr)+ ELSE expr END | integer``; ``cond`` joins ``column IS NULL`` and
    ``column op literal`` with AND / OR. A comparison with NULL is unknown and NaN compares false (Java doubles),
    so conditions hold only when true, as in SQL.
    """

    def __init__(self, sql: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(sql):
            match = TOKEN.match(sql, position)
            assert match is not None, f"unexpected SQL at {sql[position : position + 40]!r}"
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0

    def _next(self) -> tuple[str, str]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _expect(self, word: str) -> None:
        assert self._next() == ("word", word)

    def evaluate(self, value: Any) -> int:
        self.position = 0
        result = self._expr(value)
        assert self.position == len(self.tokens)
        return result

    def _expr(self, value: Any) -> int:
        kind, text = self._next()
        if kind == "number":
            return int(text)
        assert (kind, text) == ("word", "CASE")
        chosen: int | None = None
        while self.tokens[self.position] == ("word", "WHEN"):
            self._next()
            holds = self._condition(value)
            self._expect("THEN")
            branch = self._expr(value)  # every branch is parsed, so the token stream stays in step
            if chosen is None and holds:
                chosen = branch
        self._expect("ELSE")
        otherwise = self._expr(value)
        self._expect("END")
        return otherwise if chosen is None else chosen

    def _condition(self, value: Any) -> bool:
        holds = self._conjunction(value)
        while self.tokens[self.position] == ("word", "OR"):
            self._next()
            holds = self._conjunction(value) or holds
        return holds

    def _conjunction(self, value: Any) -> bool:
        holds = self._atom(value)
        while self.tokens[self.position] == ("word", "AND"):
            self._next()
            holds = self._atom(value) and holds
        return holds

    def _atom(self, value: Any) -> bool:
        kind, _ = self._next()
        assert kind == "column"
        if self.tokens[self.position] == ("word", "IS"):
            self._next()
            self._expect("NULL")
            return value is None
        _, op = self._next()
        kind, text = self._next()
        literal = _literal(kind, text)
        if value is None:
            return False
        if isinstance(literal, str):
            assert op == "="
            return bool(value == literal)
        return bool({"<": value < literal, ">=": value >= literal, "<=": value <= literal}[op])


def _literal(kind: str, text: str) -> float | str:
    if kind == "number":
        return float(text)  # Java's parser and Python's both round the decimal text to the nearest double
    assert kind == "text"
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


def sql_counts(frame: pd.DataFrame, profile: dict[str, Any]) -> dict[str, Any]:
    """Counts as the job computes them: each row's cell by the generated SQL, counted per cell, then decoded."""
    rules = bin_index_rules(profile)
    offsets = cell_offsets(rules)
    cells: Counter[int] = Counter()
    for name, rule in rules.items():
        case = SqlCase(cell_expression("`x`", rule, offsets[name]))
        for value in frame[name].astype(object):
            if rule["kind"] == "numeric":
                cells[case.evaluate(None if value is None or value is pd.NA else float(value))] += 1
            else:
                cells[case.evaluate(json_text(value))] += 1
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
    st.lists(finite, min_size=0, max_size=70, unique=True).map(sorted),
    st.lists(st.one_of(finite, st.none(), st.sampled_from([math.nan, math.inf, -math.inf])), max_size=40),
    st.integers(min_value=0, max_value=5000),
)
def test_binary_search_case_is_searchsorted(edges: list[float], values: list[float | None], offset: int) -> None:
    missing = len(edges) + 1
    case = SqlCase(numeric_cell("`v`", edges, missing, offset))
    for value in [*values, *edges, *(np.nextafter(e, -math.inf) for e in edges)]:
        expected = missing if value is None or not math.isfinite(value) else np.searchsorted(edges, value, "right")
        assert case.evaluate(value) == offset + expected


def test_search_depth_is_logarithmic() -> None:
    edges = sorted(RNG.normal(0, 1, 540))
    sql = numeric_cell("`v`", edges, len(edges) + 1)
    depth = max_depth = 0
    for token in re.findall(r"\bCASE\b|\bEND\b", sql):
        depth += 1 if token == "CASE" else -1
        max_depth = max(max_depth, depth)
    assert max_depth <= math.ceil(math.log2(len(edges) + 1)) + 1
    assert sql.count(" < ") == len(edges)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(max_size=6), min_size=1, max_size=8, unique=True).map(sorted),
    st.lists(st.one_of(st.text(max_size=6), st.none()), max_size=30),
)
def test_categorical_case_matches_pandas_text(categories: list[str], values: list[str | None]) -> None:
    k = len(categories)
    case = SqlCase(categorical_cell("`c`", categories, k, k + 1, 10))
    for value in [*values, *categories]:
        expected = k + 1 if value is None else categories.index(value) if value in categories else k
        assert case.evaluate(value) == 10 + expected


def test_json_booleans_land_in_pandas_categories() -> None:
    case = SqlCase(categorical_cell("`c`", ["False", "True"], 2, 3))
    assert [case.evaluate(v) for v in ["false", "true", "False", "True", "yes", None]] == [0, 1, 0, 1, 2, 3]


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


def test_each_feature_gets_its_own_operator_and_one_window_count() -> None:
    job = statements(spec(window_seconds=300, model_version="3"))
    assert [name for name, _ in job.views] == ["drift_flat", "drift_cells", "drift_counts"]
    views = dict(job.views)
    # Features reach their operators as plain columns, read once per event by the UNNEST boundary.
    numeric_as_nan = "COALESCE(`e`.`features`.`hr`, CAST('NaN' AS DOUBLE))"
    assert f"UNNEST(ARRAY[ROW({numeric_as_nan}, `e`.`features`.`band`)])" in views["drift_flat"]
    assert "`model_version` = '3'" in views["drift_flat"]
    branches = views["drift_cells"].split(" UNION ALL ")
    assert len(branches) == 2
    assert all("`features`" not in branch for branch in branches)
    assert "`__v0` < " in branches[0]
    assert "`__v1` = 'a'" in branches[1]
    assert views["drift_counts"].count("GROUP BY `window_start`, `window_end`, `window_time`, `cell`") == 1
    assert "INTERVAL '0 00:05:00' DAY TO SECOND" in views["drift_counts"]
    assert "GROUP BY TUMBLE(`window_time`, INTERVAL '0 00:05:00' DAY TO SECOND)" in job.insert
    source, sink = job.ddl
    assert "'path' = 'file:///lake/bronze/predictions'" in source
    assert "WATERMARK FOR `event_time` AS TO_TIMESTAMP_LTZ(-62135596800000, 3)" in source
    assert "'path' = 'file:///lake/drift/risk'" in sink


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
