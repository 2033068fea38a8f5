"""Reference profile of a training set: what the drift monitor compares live windows against."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PROFILE_VERSION = 1
DEFAULT_BINS = 10


def _numeric_profile(values: pd.Series, bins: int) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype=float)
    if present.size == 0:
        return {"kind": "numeric", "count": int(values.size), "missing_rate": 1.0, "edges": [], "frequencies": []}
    # Quantile edges give equal-mass bins on the reference, the usual basis for PSI; ties collapse duplicates.
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1)
    return {
        "kind": "numeric",
        "count": int(values.size),
        "missing_rate": float(1 - present.size / values.size),
        "mean": float(present.mean()),
        "std": float(present.std(ddof=1)) if present.size > 1 else 0.0,
        "quantiles": {str(q): float(np.quantile(present, q)) for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)},
        "edges": edges.tolist(),
        "frequencies": (counts / counts.sum()).tolist(),
        # A sorted sample keeps two-sample tests (KS, Wasserstein) possible without shipping the training set.
        "sample": np.sort(np.random.default_rng(0).choice(present, size=min(2000, present.size), replace=False))
        .round(6)
        .tolist(),
    }


def _categorical_profile(values: pd.Series) -> dict[str, Any]:
    frequencies = values.astype("string").value_counts(normalize=True, dropna=True).sort_index()
    return {
        "kind": "categorical",
        "count": int(values.size),
        "missing_rate": float(values.isna().mean()),
        "frequencies": {str(k): float(v) for k, v in frequencies.items()},
    }


def reference_profile(frame: pd.DataFrame, *, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Per-feature bins, quantiles and category frequencies of ``frame`` (JSON-serialisable)."""
    features: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        is_number = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        features[name] = _numeric_profile(column, bins) if is_number else _categorical_profile(column)
    return {"version": PROFILE_VERSION, "rows": len(frame), "features": features}
