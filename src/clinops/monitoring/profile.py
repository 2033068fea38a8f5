"""Reference profile of a training set: the bins and counts the drift monitor compares live windows against."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

# 2: numeric features gained fine bins ("bin_edges"/"bin_counts"), categorical ones their reference counts
# ("categories"/"category_counts"), both an explicit "missing" count; the raw "sample" is gone (counts replace it).
PROFILE_VERSION = 2
DEFAULT_BINS = 10
# KS from binned CDFs can only miss the supremum inside a bin; 500 equal-mass bins keep that miss small enough that
# the binned test and the raw two-sample test reach the same decision on ~99 % of undrifted columns.
DEFAULT_FINE_BINS = 500
# Floor of the spread that scales the out-of-range cuts (and normalises Wasserstein): a constant column has none.
MIN_SCALE = 1e-3
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def is_numeric_column(column: pd.Series[Any]) -> bool:
    """Whether a column is profiled as numeric (numbers but not booleans) rather than categorical."""
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def as_float(column: pd.Series[Any]) -> FloatArray:
    """The column as float64 with every null (NaN, None, pd.NA) as NaN; text that is not a number becomes NaN."""
    if column.dtype == np.float64:
        return np.asarray(column.to_numpy(), dtype=np.float64)  # NaN already: skips the copy na_value would make
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        column = pd.to_numeric(column, errors="coerce")
    return np.asarray(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def sorted_finite(values: FloatArray) -> FloatArray:
    """Sorted finite values; NaN and ±inf count as missing, so they are cut off the sorted ends."""
    ordered = np.sort(values)  # NaN sorts last
    start = int(np.searchsorted(ordered, -np.inf, side="right"))
    stop = int(np.searchsorted(ordered, np.inf, side="left"))
    return ordered[start:stop]


def counts_below(ordered: FloatArray, edges: FloatArray) -> IntArray:
    """Counts per bin of sorted finite values, bin = number of edges <= value (len(edges) + 1 bins).

    Sorting once and searching the edges in the sorted values is several times faster than searching every value
    in the edges, and gives exactly the same counts.
    """
    below = np.searchsorted(ordered, edges, side="left")
    return np.diff(np.concatenate(([0], below, [ordered.size]))).astype(np.int64)


def _numeric_profile(values: pd.Series[Any], bins: int, fine_bins: int) -> dict[str, Any]:
    ordered = sorted_finite(as_float(values))
    n, total = int(ordered.size), int(values.size)
    base: dict[str, Any] = {
        "kind": "numeric",
        "count": total,
        "missing": total - n,
        "missing_rate": float(1 - n / total) if total else 0.0,
    }
    if n == 0:
        return {**base, "edges": [], "frequencies": [], "bin_edges": [], "bin_counts": [0]}
    std = float(ordered.std(ddof=1)) if n > 1 else 0.0
    scale = max(std, MIN_SCALE)
    # The range's own ends get cuts a little outside them, so values beyond the range stay apart from the extremes
    # (and a constant column gets a below / equal / above split).
    low_end = min(ordered[0] - scale / 32, np.nextafter(ordered[0], -np.inf))
    high_end = max(ordered[-1] + scale / 32, np.nextafter(ordered[-1], np.inf))

    def cut_below(levels: IntArray) -> FloatArray:
        """A cut midway below each order statistic, between it and the next smaller distinct value.

        Ties then fall wholly on one side, and so do values that differ from a tie only by representation (a
        float32 reference, a value logged as text and parsed back), which a cut on the value itself would split.
        """
        value = ordered[levels]
        first = np.searchsorted(ordered, value, side="left")
        previous = ordered[np.maximum(first - 1, 0)]
        with np.errstate(over="ignore"):
            midway = previous + (value - previous) / 2
        return np.where(first > 0, midway, low_end)

    # Order statistics at equal-mass levels, and in the outermost bins at 2**-1..2**-10 of their mass: a long tail
    # otherwise leaves the outermost bins wide, and binned CDFs (and so Wasserstein) loose out there.
    levels = np.arange(fine_bins + 1) * (n - 1) // fine_bins
    tail = (n - 1) // (fine_bins * 2 ** np.arange(1, 11))
    # Cuts spaced geometrically outside the range, in units of the Wasserstein normalisation, bound how far
    # out-of-range mass lies, so the binned distance still measures a shift out of the range.
    steps = scale * 2.0 ** np.arange(-4, 7)
    with np.errstate(over="ignore"):
        outside = np.concatenate((ordered[0] - steps, ordered[-1] + steps))
    cuts = np.concatenate((cut_below(np.concatenate((levels, tail, n - 1 - tail))), [low_end, high_end], outside))
    bin_edges = np.unique(cuts[np.isfinite(cuts)])
    # Coarse PSI cuts: the reference's quantile cuts and the two range ends, all of them fine cuts too, so coarse
    # counts are sums of fine counts.
    coarse = np.round(np.linspace(0, fine_bins, bins + 1)).astype(np.int64)[:-1]
    edges = np.unique(np.append(cut_below(levels[coarse]), high_end))
    edges = edges[np.isfinite(edges)]
    return {
        **base,
        "mean": float(ordered.mean()),
        "std": std,
        "quantiles": {str(q): float(ordered[round(q * (n - 1))]) for q in QUANTILES},
        "edges": edges.tolist(),
        "frequencies": (counts_below(ordered, edges) / n).tolist(),
        "bin_edges": bin_edges.tolist(),
        "bin_counts": counts_below(ordered, bin_edges).tolist(),
    }


def category_text(values: pd.Series[Any]) -> pd.Series[Any]:
    """Categories are compared as text (pandas' ``astype("string")``), with nulls kept as missing."""
    return values.astype("string")


def _categorical_profile(values: pd.Series[Any]) -> dict[str, Any]:
    text = category_text(values)
    counts = text.value_counts(dropna=True).sort_index()
    total, missing = int(values.size), int(text.isna().sum())
    present = total - missing
    return {
        "kind": "categorical",
        "count": total,
        "missing": missing,
        "missing_rate": missing / total if total else 0.0,
        "frequencies": {str(k): int(v) / present for k, v in counts.items()},
        "categories": [str(k) for k in counts.index],
        "category_counts": [int(v) for v in counts.to_numpy()],
    }


def _feature_profile(column: pd.Series[Any], bins: int, fine_bins: int) -> dict[str, Any]:
    return _numeric_profile(column, bins, fine_bins) if is_numeric_column(column) else _categorical_profile(column)


def reference_profile(
    frame: pd.DataFrame, *, bins: int = DEFAULT_BINS, fine_bins: int = DEFAULT_FINE_BINS
) -> dict[str, Any]:
    """Per-feature bins, reference counts, quantiles and category counts of ``frame`` (JSON-serialisable).

    Numeric features (numbers, not booleans): ``bin_edges`` are ascending cut points (midway below the order
    statistics of the finite values at ``fine_bins`` equal-mass levels and at 2**-1..2**-10 of the outermost level's
    mass, and at 2**-5..2**6 reference spreads beyond either end of the range) and ``bin_counts`` the reference
    count in each of the ``len(bin_edges) + 1`` bins; ``edges`` are the coarse PSI cuts (the ``bins``
    quantile cuts plus the range's ends, a subset of ``bin_edges``) and ``frequencies`` the reference share in
    each of the ``len(edges) + 1`` coarse bins. Both binnings follow one rule: bin = number of cuts <= value.
    NaN, null and ±inf are ``missing``.
    Categorical features: ``categories`` sorted, ``category_counts`` aligned with them, nulls ``missing``.
    ``clinops.monitoring.bins.bin_index_rules`` spells out how a value maps to a bin.
    """
    if bins < 1 or fine_bins < bins:
        raise ValueError(f"bins must be >= 1 and fine_bins >= bins, got bins={bins}, fine_bins={fine_bins}")
    # A column concatenated twice (a subgroup that is also a feature) is one feature: the first copy stands.
    frame = frame.loc[:, ~frame.columns.duplicated()]
    names = [str(name) for name in frame.columns]
    columns = [frame.iloc[:, i] for i in range(frame.shape[1])]
    # Sorting releases the GIL, so a thread per core profiles wide frames about that many times faster.
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(columns)))) as pool:
        profiles = list(pool.map(lambda column: _feature_profile(column, bins, fine_bins), columns))
    return {"version": PROFILE_VERSION, "rows": len(frame), "features": dict(zip(names, profiles, strict=True))}
