"""The drift job's SQL and the rules it hands the Java functions: the profile's bin rule, cells and counts."""

from __future__ import annotations

import argparse
import base64
import math
import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinops.monitoring.bins import bin_index_rules, window_counts
from clinops.monitoring.drift import drift_report
from clinops.monitoring.profile import reference_profile
from clinops.streaming.flink.drift_sql import (
    BIN_COUNTS_UDAF,
    CELL_COUNTS_UDAF,
    RULES_FORMAT,
    Binning,
    DriftSpec,
    add_drift_parser,
    category_bins,
    cell_offsets,
    counts_from_cells,
    drift_options,
    encode_rules,
    interval,
    statements,
    window_bounds,
)
from clinops.streaming.flink.silver_sql import SourceKind

RNG = np.random.default_rng(7)


def decode_rules(encoded: str) -> list[tuple[str, Any]]:
    """The encoded rules read back by the layout ``encode_rules`` documents (and BinRules.java reads)."""
    data = base64.b64decode(encoded, validate=True)
    position = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal position
        values = struct.unpack_from(fmt, data, position)
        position += struct.calcsize(fmt)
        return values

    format_, features = take(">ii")
    assert format_ == RULES_FORMAT
    rules: list[tuple[str, Any]] = []
    for _ in range(features):
        (kind,) = take(">b")
        if kind == 0:
            (size,) = take(">i")
            rules.append(("numeric", list(take(f">{size}d"))))
        else:
            categories, entries = take(">ii")
            texts = {}
            for _ in range(entries):
                (length,) = take(">i")
                text = data[position : position + length].decode("utf-8")
                position += length
                texts[text] = take(">i")[0]
            rules.append(("categorical", (categories, texts)))
    assert position == len(data)
    return rules


def cells_of(frame: pd.DataFrame, rules: dict[str, Any]) -> list[int]:
    """The counts of all cells a window of ``frame`` gets by the rule the Java aggregate follows (numpy here)."""
    counts = np.zeros(sum(rule["size"] for rule in rules.values()), dtype=np.int64)
    offsets = cell_offsets(rules)
    for name, rule in rules.items():
        for value in frame[name].astype(object):
            if rule["kind"] == "numeric":
                number = math.nan if value is None or value is pd.NA else float(value)
                finite = math.isfinite(number)
                index = int(np.searchsorted(rule["edges"], number, side="right")) if finite else rule["missing"]
            elif value is None or value is pd.NA:
                index = rule["missing"]
            else:
                text = ("true" if value else "false") if isinstance(value, bool | np.bool_) else str(value)
                index = category_bins(rule).get(text, rule["other"])
            counts[offsets[name] + index] += 1
    return counts.tolist()


def profiled() -> tuple[dict[str, Any], pd.DataFrame]:
    n = 4000
    reference = pd.DataFrame(
        {
            "heart_rate": RNG.normal(80, 10, n),
            "lactate": RNG.lognormal(0.3, 0.6, n),
            "age": RNG.integers(18, 95, n).astype(float),  # ties: cuts fall midway between distinct values
            "band": RNG.choice(["18-40", "40-65", "65+ é", "🫀"], n),
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
    return profile, window


def test_rules_carry_the_profiles_exact_doubles_and_texts() -> None:
    profile, _ = profiled()
    rules = bin_index_rules(profile)
    decoded = decode_rules(encode_rules(rules))
    assert len(decoded) == len(rules)
    for (kind, body), (name, rule) in zip(decoded, rules.items(), strict=True):
        assert kind == rule["kind"], name
        if kind == "numeric":
            # Bit for bit: the JVM searches the very doubles numpy searched.
            assert np.array_equal(np.array(body).view(np.int64), np.array(rule["edges"]).view(np.int64)), name
        else:
            categories, texts = body
            assert categories == len(rule["categories"])
            assert texts == category_bins(rule)
    assert decode_rules(encode_rules(rules))[4][1][1] == {"False": 0, "True": 1, "false": 0, "true": 1}
    assert set(encode_rules(rules)) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def test_json_booleans_join_pandas_categories_unless_a_category_of_their_own() -> None:
    assert category_bins({"categories": ["False", "True"]}) == {"False": 0, "True": 1, "false": 0, "true": 1}
    assert category_bins({"categories": ["True", "true"]}) == {"True": 0, "true": 1}
    assert category_bins({"categories": ["a"]}) == {"a": 0}


def test_rules_refuse_text_the_jvm_cannot_read() -> None:
    rules = {"c": {"kind": "categorical", "categories": ["\ud800"], "other": 1, "missing": 2, "size": 3}}
    with pytest.raises(ValueError, match="not valid Unicode"):
        encode_rules(rules)


def test_window_counts_equal_the_cells_rule_on_a_profiled_frame() -> None:
    profile, window = profiled()
    rules = bin_index_rules(profile)
    expected = window_counts(window, profile)
    got = counts_from_cells(cells_of(window, rules), rules)
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert drift_report(got, profile).to_record() == drift_report(expected, profile).to_record()


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=1, max_size=70, unique=True).map(sorted), st.lists(finite, max_size=40))
def test_numeric_cells_are_searchsorted_over_the_edges(edges: list[float], values: list[float]) -> None:
    rules = {"x": {"kind": "numeric", "edges": edges, "missing": len(edges) + 1, "size": len(edges) + 2}}
    frame = pd.DataFrame({"x": [*values, *edges, math.nan]}, dtype=float)
    got = counts_from_cells(cells_of(frame, rules), rules)
    np.testing.assert_array_equal(got["x"], window_counts(frame, {"version": 2, "features": _features(rules)})["x"])


def _features(rules: dict[str, Any]) -> dict[str, Any]:
    return {name: {"kind": "numeric", "bin_edges": rule["edges"]} for name, rule in rules.items()}


def test_cells_name_every_feature_bin_once() -> None:
    rules = {
        "a": {"kind": "numeric", "edges": [0.0, 1.0], "missing": 3, "size": 4},
        "b": {"kind": "categorical", "categories": ["x"], "other": 1, "missing": 2, "size": 3},
    }
    assert cell_offsets(rules) == {"a": 0, "b": 4}
    counts = counts_from_cells([1, 2, 3, 4, 5, 6, 7], rules)
    assert {name: c.tolist() for name, c in counts.items()} == {"a": [1, 2, 3, 4], "b": [5, 6, 7]}
    with pytest.raises(ValueError, match="6 cell counts; the rules have 7 cells"):
        counts_from_cells([0] * 6, rules)
    with pytest.raises(ValueError, match="negative"):
        counts_from_cells([0, 0, 0, 0, 0, -1, 0], rules)


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


def test_each_event_is_counted_once_by_the_java_aggregate() -> None:
    job = statements(spec(window_seconds=300, model_version="3"))
    assert job.ddl[2] == (
        f"CREATE TEMPORARY SYSTEM FUNCTION {BIN_COUNTS_UDAF} AS 'io.clinops.flink.DriftBinCounts' LANGUAGE JAVA"
    )
    views = dict(job.views)
    assert list(views) == ["drift_events", "drift_counts"]
    assert "`model_version` = '3'" in views["drift_events"]
    # One aggregate call per event with the features ROW, declared in the rules' order: no row per feature.
    assert "`features` ROW<`hr` DOUBLE, `band` STRING>" in job.ddl[0]
    assert f"{BIN_COUNTS_UDAF}(`features`) AS `counts`" in views["drift_counts"]
    assert "UNNEST" not in " ".join(views.values())
    window = "INTERVAL '0 00:05:00' DAY TO SECOND"
    assert f"TUMBLE(TABLE `drift_events`, DESCRIPTOR(`event_time`), {window})" in views["drift_counts"]
    assert views["drift_counts"].endswith("GROUP BY `window_start`, `window_end`")
    # The Python report runs on the one row per window the count emits.
    assert job.insert == (
        "INSERT INTO `drift_results` SELECT clinops_drift_report(`start_s`, `counts`), "
        "DATE_FORMAT(`window_start`, 'yyyy-MM-dd') FROM `drift_counts`"
    )
    source, sink = job.ddl[:2]
    assert "'path' = 'file:///lake/bronze/predictions'" in source
    assert "WATERMARK FOR `event_time` AS TO_TIMESTAMP_LTZ(-62135596800000, 3)" in source
    assert "'path' = 'file:///lake/drift/risk'" in sink


def test_kafka_source_and_sink() -> None:
    job = statements(spec(source=SourceKind.KAFKA, sink=SourceKind.KAFKA, bootstrap="h:9", bounded=True))
    source, sink = job.ddl[:2]
    assert "`event_time` - INTERVAL '0 00:05:00' DAY TO SECOND" in source
    assert "'scan.bounded.mode' = 'latest-offset'" in source
    assert "'topic' = 'drift-results'" in sink
    assert "'key.fields' = 'deployment'" in sink
    assert job.insert.startswith("INSERT INTO `drift_results` SELECT 'risk', clinops_drift_report(`start_s`, `counts`)")


def test_python_binning_is_one_udf_call_per_event_counted_in_the_jvm() -> None:
    job = statements(spec(binning=Binning.PYTHON))
    views = dict(job.views)
    assert list(views) == ["drift_events", "drift_counts"]
    assert "clinops_bins(`features`.`hr`, `features`.`band`) AS `cells`" in views["drift_events"]
    assert f"{CELL_COUNTS_UDAF}(`cells`) AS `counts`" in views["drift_counts"]
    assert "io.clinops.flink.DriftCellCounts" in job.ddl[2]


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
