"""Bin counts of a window against a reference profile: the one input every drift statistic is computed from."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from clinops.monitoring.profile import IntArray, as_float, category_text, counts_below, sorted_finite

Counts = dict[str, IntArray]


def bin_index_rules(profile: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per feature, the plain data a streaming job needs to assign bins exactly as the batch path does.

    The bin rule, which the batch path here and the drift job's Java aggregate (``scripts/flink-udf``) must both
    follow exactly:

    - numeric feature with ascending cut points ``edges`` (the profile's ``bin_edges``): a null, NaN or ±inf value goes
      to bin ``missing = len(edges) + 1``; any other value ``v`` to bin ``count(e in edges where e <= v)``, i.e.
      ``numpy.searchsorted(edges, v, side="right")`` (``-0.0`` equals ``0.0``). The job ships the edges as the very
      doubles (``drift_sql.encode_rules``), so the JVM compares against the same values numpy does.
    - categorical feature with sorted ``categories``: a null goes to ``missing = len(categories) + 1``; a value whose
      text equals ``categories[i]`` to bin ``i``; any other value to ``other = len(categories)``. The text is what
      pandas' ``astype("string")`` gives (booleans ``True``/``False``, floats their shortest repr such as ``1.0``).

    A count vector has one slot per bin, missing last, so its sum is the number of rows in the window.

    Numeric: ``{"kind": "numeric", "edges": [float...], "missing": int, "size": int}``; categorical:
    ``{"kind": "categorical", "categories": [str...], "other": int, "missing": int, "size": int}``.
    """
    if profile.get("version", 0) < 2:
        raise ValueError(
            f"profile version {profile.get('version')} has no bin counts: rebuild it with reference_profile"
        )
    rules: dict[str, dict[str, Any]] = {}
    for name, feature in profile["features"].items():
        if feature["kind"] == "numeric":
            edges = [float(e) for e in feature["bin_edges"]]
            rules[name] = {"kind": "numeric", "edges": edges, "missing": len(edges) + 1, "size": len(edges) + 2}
        else:
            categories = [str(c) for c in feature["categories"]]
            k = len(categories)
            rules[name] = {"kind": "categorical", "categories": categories, "other": k, "missing": k + 1, "size": k + 2}
    return rules


def _numeric_counts(column: pd.Series[Any], edges: np.ndarray[Any, np.dtype[np.float64]]) -> IntArray:
    values = as_float(column)
    ordered = sorted_finite(values)
    return np.append(counts_below(ordered, edges), values.size - ordered.size)


def _categorical_counts(column: pd.Series[Any], categories: list[str]) -> IntArray:
    text = category_text(column)
    codes = np.asarray(pd.Categorical(text, categories=categories).codes, dtype=np.int64)
    k = len(categories)
    codes[codes < 0] = k  # unseen values and nulls share code -1; nulls are split off next
    codes[text.isna().to_numpy()] = k + 1
    return np.bincount(codes, minlength=k + 2).astype(np.int64)


def window_counts(frame: pd.DataFrame, profile: Mapping[str, Any], *, workers: int | None = None) -> Counts:
    """Bin counts of every profiled feature over the rows of ``frame`` (the batch path).

    A profiled feature absent from ``frame`` counts every row as missing: a feature that stops arriving shows up as
    a missing rate of 1, not as an error that hides every other feature's drift.
    """
    rules = bin_index_rules(profile)
    rows = len(frame)

    def count(name: str) -> IntArray:
        rule = rules[name]
        if name not in frame.columns:
            absent = np.zeros(rule["size"], dtype=np.int64)
            absent[rule["missing"]] = rows
            return absent
        if rule["kind"] == "numeric":
            return _numeric_counts(frame[name], np.asarray(rule["edges"], dtype=np.float64))
        return _categorical_counts(frame[name], rule["categories"])

    # Sorting releases the GIL, so features are counted a thread per core.
    size = workers if workers is not None else min(os.cpu_count() or 1, len(rules))
    with ThreadPoolExecutor(max_workers=max(1, size)) as pool:
        return dict(zip(rules, pool.map(count, rules), strict=True))


def empty_counts(profile: Mapping[str, Any]) -> Counts:
    """All-zero counts for every profiled feature: the identity of :func:`merge_counts`."""
    return {name: np.zeros(rule["size"], dtype=np.int64) for name, rule in bin_index_rules(profile).items()}


def merge_counts(*parts: Mapping[str, IntArray]) -> Counts:
    """Element-wise sum of count dicts over the same features, so partial windows add up to the whole window."""
    if not parts:
        raise ValueError("merge_counts needs at least one count dict")
    names = list(parts[0])
    merged = {name: np.array(parts[0][name], dtype=np.int64) for name in names}
    for part in parts[1:]:
        if set(part) != set(names):
            raise ValueError(f"count dicts cover different features: {sorted(set(part) ^ set(names))}")
        for name in names:
            if len(part[name]) != len(merged[name]):
                raise ValueError(f"feature {name!r}: {len(part[name])} bins against {len(merged[name])}")
            merged[name] += np.asarray(part[name], dtype=np.int64)
    return merged


def counts_from_rows(rows: Iterable[tuple[str, int, int]], profile: Mapping[str, Any]) -> Counts:
    """Counts from ``(feature, bin, count)`` rows, as an aggregation grouped by feature and bin emits them.

    Bins that received no row are zero; a row may repeat a (feature, bin) pair, its counts add up.
    """
    counts = empty_counts(profile)
    for feature, index, count in rows:
        if feature not in counts:
            raise ValueError(f"count row for unprofiled feature {feature!r}")
        if not 0 <= index < counts[feature].size:
            raise ValueError(f"feature {feature!r}: bin {index} outside 0..{counts[feature].size - 1}")
        if count < 0:
            raise ValueError(f"feature {feature!r}: negative count {count} in bin {index}")
        counts[feature][index] += count
    return counts
