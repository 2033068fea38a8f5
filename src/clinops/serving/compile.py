"""Turns a fitted pipeline into the fastest scorer that reproduces it, proven on probe rows before it serves.

Measured on one row of a 100-tree XGBoost model with 92 features: ``predict_proba`` on a one-row DataFrame takes
milliseconds, ``Booster.inplace_predict`` on a numpy row a few hundred microseconds, and ONNX Runtime's tree
ensemble tens of microseconds. So the server converts the model to ONNX at load (onnxmltools for XGBoost,
skl2onnx for scikit-learn pipelines), scores probe rows with both, and keeps the ONNX session only when every
score matches the pipeline's own; otherwise it falls back to the next candidate. The registry keeps the one
pipeline MLflow logged: what serves is derived from it, never a second artifact that could drift from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

Scores = NDArray[np.float64]
Scorer = Callable[[NDArray[np.float64]], Scores]
# Scores are probabilities computed in float32 by every candidate; a real divergence is far larger than this.
TOLERANCE = 1e-5
ONNX_OPSET = 15


def _estimator(pipeline: Any) -> tuple[list[tuple[str, Any]], Any]:
    steps = list(getattr(pipeline, "steps", [("model", pipeline)]))
    return steps, steps[-1][1]


def reference_scorer(pipeline: Any, feature_names: list[str]) -> Scorer:
    """The pipeline's own prediction on a DataFrame: always right, slowest."""
    _, model = _estimator(pipeline)
    probabilistic = hasattr(model, "predict_proba")

    def score(X: NDArray[np.float64]) -> Scores:
        frame = pd.DataFrame(X, columns=feature_names)
        if probabilistic:
            return np.asarray(pipeline.predict_proba(frame)[:, 1], dtype=np.float64)
        return np.asarray(-pipeline.score_samples(frame), dtype=np.float64)

    return score


def _onnx_session(model_bytes: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One request at a time per process (replicas scale out): threads would only contend for the one core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _onnx_model(pipeline: Any, width: int) -> bytes | None:
    steps, model = _estimator(pipeline)
    if not hasattr(model, "predict_proba"):
        return None
    if len(steps) == 1 and type(model).__name__ == "XGBClassifier":
        from onnxmltools.convert import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        # The converter names features f0, f1, …: hand it a copy without the column names (order is what counts).
        booster = model.get_booster().copy()
        booster.feature_names = None
        unnamed = type(model)(**model.get_params())
        unnamed._Booster = booster
        unnamed.n_classes_ = model.n_classes_
        onnx = convert_xgboost(unnamed, initial_types=[("X", FloatTensorType([None, width]))], target_opset=ONNX_OPSET)
        return bytes(onnx.SerializeToString())
    from skl2onnx import to_onnx

    onnx = to_onnx(
        pipeline,
        np.zeros((1, width), dtype=np.float32),
        target_opset=ONNX_OPSET,
        options={id(model): {"zipmap": False}},
    )
    return bytes(onnx.SerializeToString())


def onnx_scorer(pipeline: Any, width: int) -> Scorer | None:
    model_bytes = _onnx_model(pipeline, width)
    if model_bytes is None:
        return None
    session = _onnx_session(model_bytes)
    input_name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    probabilities = "probabilities" if "probabilities" in outputs else outputs[-1]

    def score(X: NDArray[np.float64]) -> Scores:
        (proba,) = session.run([probabilities], {input_name: X.astype(np.float32, copy=False)})
        return np.asarray(proba[:, 1], dtype=np.float64)

    return score


def xgboost_scorer(pipeline: Any, feature_names: list[str]) -> Scorer | None:
    steps, model = _estimator(pipeline)
    if len(steps) != 1 or type(model).__name__ != "XGBClassifier":
        return None
    booster = model.get_booster()

    def score(X: NDArray[np.float64]) -> Scores:
        # Feature order was checked against the signature at load; per-call validation would only repeat that.
        return np.asarray(booster.inplace_predict(X, validate_features=False), dtype=np.float64)

    return score


def compile_scorer(pipeline: Any, feature_names: list[str], probe: NDArray[np.float64]) -> tuple[Scorer, str]:
    """(scorer, name of the path) for the fastest candidate whose scores on ``probe`` match the pipeline's."""
    reference = reference_scorer(pipeline, feature_names)
    expected = reference(probe)
    candidates: list[tuple[str, Callable[[], Scorer | None]]] = [
        ("onnxruntime", lambda: onnx_scorer(pipeline, len(feature_names))),
        ("xgboost-inplace", lambda: xgboost_scorer(pipeline, feature_names)),
    ]
    for name, build in candidates:
        try:
            scorer = build()
            if scorer is None:
                continue
            # Batched and one row at a time: a converter may handle a batch of one differently.
            one_by_one = np.concatenate([scorer(probe[i : i + 1]) for i in range(len(probe))])
            gap = max(float(np.max(np.abs(scorer(probe) - expected))), float(np.max(np.abs(one_by_one - expected))))
            if gap <= TOLERANCE:
                return scorer, name
            logger.warning("Scorer %s differs from the pipeline by %.2g on the probe rows; not used", name, gap)
        except Exception as exc:  # a converter that cannot handle this model: fall through to the next path
            logger.warning("Scorer %s unavailable for this model: %s", name, exc)
    return reference, "sklearn-pipeline"
