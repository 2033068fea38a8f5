"""Held-out evaluation: discrimination, calibration, the same per subgroup, and the plots that show them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from clinops.specs.training_job import Metric

CALIBRATION_BINS = 10
MIN_SUBGROUP_SIZE = 30


def calibration_error(y: NDArray[np.int_], p: NDArray[np.float64], bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error over equal-width probability bins (weighted by bin size)."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            total += in_bin.sum() * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(total / len(p))


def metrics(y: NDArray[np.int_], scores: NDArray[np.float64], *, probabilistic: bool = True) -> dict[str, float]:
    result = {
        Metric.ROC_AUC.value: float(roc_auc_score(y, scores)),
        Metric.PR_AUC.value: float(average_precision_score(y, scores)),
    }
    if probabilistic:  # anomaly scores are not probabilities: calibration means nothing for them
        result[Metric.BRIER.value] = float(brier_score_loss(y, scores))
        result[Metric.CALIBRATION_ERROR.value] = calibration_error(y, scores)
    return result


def metric_key(*parts: str) -> str:
    """MLflow metric names allow letters, digits, ``_-./`` and spaces only (``90+`` becomes ``90plus``)."""
    return "/".join(re.sub(r"[^A-Za-z0-9_\-. ]", "", p.replace("+", "plus")) for p in parts)


def subgroup_metrics(
    frame: pd.DataFrame, y: NDArray[np.int_], scores: NDArray[np.float64], columns: list[str], *, probabilistic: bool
) -> dict[str, float]:
    """The same metrics within each subgroup big enough and holding both classes."""
    result: dict[str, float] = {}
    for column in columns:
        for value in sorted(frame[column].dropna().unique().tolist()):
            mask = (frame[column] == value).to_numpy()
            if mask.sum() < MIN_SUBGROUP_SIZE or len(np.unique(y[mask])) < 2:
                continue
            for name, score in metrics(y[mask], scores[mask], probabilistic=probabilistic).items():
                result[metric_key(name, column, str(value))] = score
            result[metric_key("count", column, str(value))] = float(mask.sum())
    return result


def write_plots(
    y: NDArray[np.int_], scores: NDArray[np.float64], directory: Path, *, probabilistic: bool
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import RocCurveDisplay

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    figure, axes = plt.subplots(figsize=(5, 5))
    RocCurveDisplay.from_predictions(y, scores, ax=axes, name="model", plot_chance_level=True)
    paths.append(directory / "roc_curve.png")
    figure.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(figure)
    if probabilistic:
        figure, axes = plt.subplots(figsize=(5, 5))
        CalibrationDisplay.from_predictions(y, scores, n_bins=CALIBRATION_BINS, ax=axes, name="model")
        paths.append(directory / "calibration.png")
        figure.savefig(paths[-1], dpi=100, bbox_inches="tight")
        plt.close(figure)
    return paths
