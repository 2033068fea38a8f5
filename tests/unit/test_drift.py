from __future__ import annotations

import functools
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from clinops.monitoring.bins import bin_index_rules, counts_from_rows, empty_counts, merge_counts, window_counts
from clinops.monitoring.drift import drift_report as report
from clinops.monitoring.drift import ks_p_value, wasserstein_from_counts
from clinops.monitoring.profile import PROFILE_VERSION, reference_profile

RNG = np.random.default_rng(2024)


def sql_bin(value: object, rule: dict) -> int:
    """The bin rule written as the CASE expression a SQL aggregation evaluates, one value at a time."""
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return rule["missing"]
    if rule["kind"] == "numeric":
        for index, edge in enumerate(rule["edges"]):
            if value < edge:
                return index
        return len(rule["edges"])
    text = str(value)
    return rule["categories"].index(text) if text in rule["categories"] else rule["other"]


def sql_rows(frame: pd.DataFrame, profile: dict) -> list[tuple[str, int, int]]:
    """(feature, bin, count) rows as ``GROUP BY feature, bin`` over per-event bins emits them."""
    rows = []
    for name, rule in bin_index_rules(profile).items():
        values = frame[name].astype(object).where(frame[name].notna(), None) if name in frame else [None] * len(frame)
        bins = pd.Series([sql_bin(v, rule) for v in values], dtype="int64")
        rows.extend((name, int(b), int(c)) for b, c in bins.value_counts().items())
    return rows


def frames(n_ref: int = 20_000, n_cur: int = 20_000, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    def make(n: int, delta: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "heart_rate": RNG.normal(80 + 10 * delta, 10, n),
                "lactate": RNG.lognormal(0.3 + delta, 0.6, n),
                "age_band": RNG.choice(["18-40", "40-65", "65+"], n, p=[0.3, 0.4 + delta / 4, 0.3 - delta / 4]),
            }
        )

    return make(n_ref, 0.0), make(n_cur, shift)


def test_profile_layout_and_json_round_trip() -> None:
    ref, _ = frames()
    profile = reference_profile(ref)
    assert profile["version"] == PROFILE_VERSION == 2
    hr = profile["features"]["heart_rate"]
    assert hr["kind"] == "numeric"
    assert sum(hr["bin_counts"]) == len(ref)
    assert len(hr["bin_counts"]) == len(hr["bin_edges"]) + 1
    assert np.all(np.diff(hr["bin_edges"]) > 0)
    assert set(hr["edges"]) <= set(hr["bin_edges"])  # coarse cuts are fine cuts
    assert len(hr["frequencies"]) == len(hr["edges"]) + 1
    assert sum(hr["frequencies"]) == pytest.approx(1)
    # Equal-mass fine bins: none holds much more than 1/500 of the reference.
    assert max(hr["bin_counts"]) <= 2 * len(ref) / 500
    band = profile["features"]["age_band"]
    assert band["categories"] == ["18-40", "40-65", "65+"]
    assert sum(band["category_counts"]) == len(ref)
    assert sum(band["frequencies"].values()) == pytest.approx(1)
    doubled = reference_profile(pd.concat([ref, ref[["age_band"]]], axis=1))
    assert doubled["features"]["age_band"] == band
    # Edges survive JSON exactly, so a profile read back from the registry bins values exactly as the original.
    assert json.loads(json.dumps(profile)) == profile


def test_profile_and_counts_take_any_column_dtype() -> None:
    ref = pd.DataFrame(
        {
            "visits": pd.array([1, 2, None, 4] * 50, dtype="Int64"),
            "on_insulin": [True, False, True, True] * 50,
            "sex": pd.Categorical(["F", "M", "F", None] * 50),
            "bmi": np.float32([21.5, 30.1, np.nan, 25.0] * 50),
        }
    )
    profile = json.loads(json.dumps(reference_profile(ref)))
    kinds = {name: feature["kind"] for name, feature in profile["features"].items()}
    assert kinds == {"visits": "numeric", "on_insulin": "categorical", "sex": "categorical", "bmi": "numeric"}
    assert profile["features"]["on_insulin"]["categories"] == ["False", "True"]
    # A window read from JSON carries the same features as text and floats; they land in the same bins.
    window = pd.DataFrame({"visits": [1.0, 2.0, None, 4.0] * 50, "on_insulin": ["True", "False", "True", "True"] * 50})
    window["sex"] = pd.Series(["F", "M", "F", None] * 50, dtype=object)
    window["bmi"] = [21.5, 30.1, None, 25.0] * 50
    counts = window_counts(window, profile)
    result = report(counts, profile, numerical_test="psi")
    assert all(feature.tested for feature in result.features.values())
    assert not result.drifted_features
    assert result.features["visits"].missing_rate == 0.25


@pytest.mark.parametrize(("shift", "drifted"), [(0.0, False), (0.3, True)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ks_from_bins_tracks_scipy_on_raw_samples(shift: float, drifted: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"x": rng.lognormal(0, 0.8, 30_000)})
    cur = pd.DataFrame({"x": rng.lognormal(shift, 0.8, 12_000)})
    profile = reference_profile(ref)
    counts = window_counts(cur, profile)
    result = report(counts, profile).features["x"]
    raw = stats.ks_2samp(ref["x"], cur["x"])
    ref_share = np.asarray(profile["features"]["x"]["bin_counts"]) / len(ref)
    cur_share = counts["x"][:-1] / len(cur)
    # The binned CDF gap is the raw one at the bin edges: never above it, below by at most one bin's share.
    assert 0 <= raw.statistic - result.statistic <= max(ref_share.max(), cur_share.max()) + 1e-12
    assert result.drifted is drifted
    assert bool(raw.pvalue < 0.05) is drifted


@pytest.mark.parametrize(("n", "m"), [(3_000, 2_000), (9_000, 11_000), (200_000, 150_000)])
def test_ks_p_value_is_scipys_asymptotic_one(n: int, m: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.normal(0, 1, n), rng.normal(0.03, 1, m)
    raw = stats.ks_2samp(a, b, method="asymp")
    ours = ks_p_value(float(raw.statistic), n, m)
    if n * m / (n + m) <= 10_000:
        assert ours == pytest.approx(raw.pvalue, rel=1e-12)
    else:
        assert ours == pytest.approx(raw.pvalue, rel=2e-3)


def test_chi2_and_jsd_equal_scipy_on_raw_category_counts() -> None:
    ref, cur = frames(shift=0.1)
    profile = reference_profile(ref)
    counts = window_counts(cur, profile)
    ref_counts = ref["age_band"].value_counts().sort_index()
    cur_counts = cur["age_band"].value_counts().reindex(ref_counts.index, fill_value=0)
    expected = stats.chisquare(cur_counts, ref_counts / ref_counts.sum() * cur_counts.sum())
    chi2 = report(counts, profile, categorical_test="chi2").features["age_band"]
    assert chi2.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert chi2.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert chi2.drifted is bool(expected.pvalue < 0.05)
    jsd = report(counts, profile, categorical_test="jsd").features["age_band"]
    assert jsd.statistic == pytest.approx(distance.jensenshannon(ref_counts, cur_counts), rel=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.2, 1.0])
def test_wasserstein_close_to_scipy_over_reference_std(shift: float) -> None:
    ref, cur = frames(shift=shift)
    profile = reference_profile(ref)
    result = report(window_counts(cur, profile), profile, numerical_test="wasserstein")
    for name in ("heart_rate", "lactate"):
        expected = stats.wasserstein_distance(ref[name], cur[name]) / ref[name].std()
        assert result.features[name].statistic == pytest.approx(expected, rel=0.02, abs=2e-3)


def test_psi_over_the_profiles_coarse_bins() -> None:
    ref, cur = frames(shift=0.5)
    profile = reference_profile(ref)
    result = report(window_counts(cur, profile), profile, numerical_test="psi")
    edges = profile["features"]["heart_rate"]["edges"]
    expected_ref = np.bincount(np.searchsorted(edges, ref["heart_rate"], side="right"), minlength=len(edges) + 1)
    expected_cur = np.bincount(np.searchsorted(edges, cur["heart_rate"], side="right"), minlength=len(edges) + 1)
    p = np.where(expected_ref == 0, 1e-4, expected_ref / len(ref))
    q = np.where(expected_cur == 0, 1e-4, expected_cur / len(cur))
    assert result.features["heart_rate"].statistic == pytest.approx(float(np.sum((p - q) * np.log(p / q))))
    assert result.features["heart_rate"].drifted


numbers = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 2.5, math.nan, math.inf, -math.inf]),
)


@settings(max_examples=60, deadline=None)
@given(
    reference=st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1.0, 2.5]), min_size=1),
    window=st.lists(numbers, min_size=1, max_size=200),
    labels=st.lists(st.sampled_from(["a", "b", "c", "zz", None]), min_size=1, max_size=200),
)
def test_window_counts_follow_the_per_value_sql_rule(
    reference: list[float], window: list[float], labels: list[str | None]
) -> None:
    ref = pd.DataFrame({"x": reference, "c": (["a", "b"] * len(reference))[: len(reference)]})
    profile = reference_profile(ref, fine_bins=20)
    # Window values also sit exactly on the edges, where an off-by-one in the rule would show.
    values = window + profile["features"]["x"]["bin_edges"]
    cur = pd.DataFrame({"x": values, "c": [labels[i % len(labels)] for i in range(len(values))]})
    counts = window_counts(cur, profile)
    assert {k: v.tolist() for k, v in counts_from_rows(sql_rows(cur, profile), profile).items()} == {
        k: v.tolist() for k, v in counts.items()
    }
    assert all(int(v.sum()) == len(cur) for v in counts.values())


@functools.cache
def merge_case() -> tuple[pd.DataFrame, dict]:
    ref, cur = frames(n_ref=5_000, n_cur=3_000, shift=0.2)
    cur.loc[cur.sample(200, random_state=1).index, "lactate"] = np.nan
    return cur, reference_profile(ref)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 3_000), max_size=6))
def test_partial_windows_merge_to_the_whole_window(cuts: list[int]) -> None:
    cur, profile = merge_case()
    bounds = [0, *sorted(cuts), len(cur)]
    parts = [window_counts(cur.iloc[a:b], profile) for a, b in itertools.pairwise(bounds)]
    merged = merge_counts(empty_counts(profile), *parts)
    assert {k: v.tolist() for k, v in merged.items()} == {k: v.tolist() for k, v in window_counts(cur, profile).items()}


def test_stream_and_batch_give_the_same_record() -> None:
    cur, profile = merge_case()
    # The stream: per-event SQL bins, aggregated per partition, partial windows merged.
    partitions = [cur.iloc[:1000], cur.iloc[1000:]]
    streamed = merge_counts(*(counts_from_rows(sql_rows(part, profile), profile) for part in partitions))
    window = {"window_start": "2026-01-01T00:00:00+00:00", "window_end": "2026-01-01T00:10:00+00:00"}
    for numerical, categorical in [("ks", "chi2"), ("wasserstein", "jsd"), ("psi", "psi"), ("jsd", "chi2")]:
        tests = {"numerical_test": numerical, "categorical_test": categorical}
        batch = report(window_counts(cur, profile), profile, **tests, **window).to_record()
        assert report(streamed, profile, **tests, **window).to_record() == batch


def test_missing_values_and_unseen_categories() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, None, 4.0] * 500, "c": ["a", "b", None, "a"] * 500})
    profile = reference_profile(ref)
    assert profile["features"]["x"]["missing"] == 500
    assert profile["features"]["c"]["missing"] == 500
    cur = pd.DataFrame({"x": [1.0, np.nan, np.inf, 2.0] * 250, "c": pd.Series(["a", pd.NA, "new", "b"] * 250)})
    counts = window_counts(cur, profile)
    rules = bin_index_rules(profile)
    assert counts["x"][rules["x"]["missing"]] == 500  # NaN and inf alike
    assert counts["c"][rules["c"]["other"]] == 250
    assert counts["c"][rules["c"]["missing"]] == 250
    result = report(counts, profile)
    assert result.features["x"].missing_rate == 0.5
    unseen = result.features["c"]
    assert unseen.drifted
    assert unseen.p_value == 0.0
    assert unseen.unseen_rate == pytest.approx(1 / 3)
    record = result.to_record()
    assert record["features"]["c"]["statistic"] is None  # infinite chi², not representable in JSON
    json.dumps(record, allow_nan=False)
    assert report(counts, profile, categorical_test="jsd").features["c"].drifted


def test_constant_reference_column_detects_any_change() -> None:
    ref = pd.DataFrame({"flag": np.full(5_000, 3.0)})
    profile = reference_profile(ref)
    assert profile["features"]["flag"]["std"] == 0.0
    same = window_counts(pd.DataFrame({"flag": np.full(1_000, 3.0)}), profile)
    moved = window_counts(pd.DataFrame({"flag": np.r_[np.full(900, 3.0), np.full(100, 3.5)]}), profile)
    for test in ("ks", "psi", "wasserstein", "jsd"):
        assert not report(same, profile, numerical_test=test).drifted, test
        assert report(moved, profile, numerical_test=test).features["flag"].drifted, test


def test_wasserstein_sees_a_shift_out_of_the_reference_range() -> None:
    ref = pd.DataFrame({"x": RNG.normal(0, 1, 10_000)})
    profile = reference_profile(ref)
    reference = np.asarray(profile["features"]["x"]["bin_counts"], dtype=float)
    edges = np.asarray(profile["features"]["x"]["bin_edges"])
    for shift in (3.0, 8.0, 20.0):
        cur = RNG.normal(shift, 1, 10_000)
        binned = wasserstein_from_counts(reference, window_counts(pd.DataFrame({"x": cur}), profile)["x"][:-1], edges)
        assert binned == pytest.approx(stats.wasserstein_distance(ref["x"], cur), rel=0.1)


def test_empty_window_all_missing_and_absent_features() -> None:
    ref, cur = frames(n_ref=2_000, n_cur=500)
    profile = reference_profile(ref)
    with pytest.raises(ValueError, match="empty window"):
        report(window_counts(cur.iloc[:0], profile), profile)
    cur["heart_rate"] = np.nan
    counts = window_counts(cur.drop(columns=["lactate"]), profile)
    result = report(counts, profile)
    for name in ("heart_rate", "lactate"):
        feature = result.features[name]
        assert (feature.tested, feature.drifted, feature.statistic, feature.missing_rate) == (False, False, None, 1.0)
    assert result.features["age_band"].tested
    assert result.drift_share == 0.0
    assert not result.drifted


def test_dataset_drift_share_and_record() -> None:
    ref, cur = frames(shift=0.5)
    profile = reference_profile(ref)
    result = report(window_counts(cur, profile), profile, drift_share=0.5, window_end=pd.Timestamp("2026-03-01"))
    assert result.drifted_features == ["heart_rate", "lactate", "age_band"]
    assert result.drift_share == 1.0
    assert result.drifted
    record = json.loads(json.dumps(result.to_record(), allow_nan=False))
    assert record["rows"] == len(cur)
    assert record["drifted"] is True
    assert record["window_end"] == "2026-03-01T00:00:00"
    assert record["window_start"] is None
    assert set(record["features"]["heart_rate"]) >= {"test", "statistic", "p_value", "drifted", "missing_rate"}
    same_ref, same_cur = frames()
    quiet = report(window_counts(same_cur, reference_profile(same_ref)), reference_profile(same_ref))
    assert not quiet.drifted


def test_bad_arguments_are_named() -> None:
    ref, cur = frames(n_ref=1_000, n_cur=100)
    profile = reference_profile(ref)
    counts = window_counts(cur, profile)
    with pytest.raises(ValueError, match="numerical test"):
        report(counts, profile, numerical_test="anderson")
    with pytest.raises(ValueError, match="categorical test"):
        report(counts, profile, categorical_test="ks")
    with pytest.raises(ValueError, match="drift_share"):
        report(counts, profile, drift_share=0)
    with pytest.raises(ValueError, match="different features"):
        report({"heart_rate": counts["heart_rate"]}, profile)
    uneven = dict(counts, lactate=counts["lactate"] * 2)
    with pytest.raises(ValueError, match="different numbers of rows"):
        report(uneven, profile)
    with pytest.raises(ValueError, match="bin 99999"):
        counts_from_rows([("heart_rate", 99_999, 1)], profile)
    with pytest.raises(ValueError, match="unprofiled"):
        counts_from_rows([("spo2", 0, 1)], profile)
    with pytest.raises(ValueError, match="bins"):
        merge_counts(counts, dict(counts, age_band=counts["age_band"][:-1]))
    with pytest.raises(ValueError, match="rebuild"):
        window_counts(cur, {**profile, "version": 1})
