"""A registered model made ready to serve: resolved version, feature schema from its signature and a fast scorer."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clinops.errors import ClinopsError

Scores = NDArray[np.float64]
Scorer = Callable[[NDArray[np.float64]], Scores]

# MLflow signature column types the server accepts, as the JSON types a client may send for them.
NUMERIC_TYPES = {"double", "float", "long", "integer", "boolean"}


class ModelLoadError(ClinopsError):
    """The registry has no such model, alias or version, or its artifact cannot be served."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class ServableModel:
    """One loaded version. Immutable: a reload builds a new one and swaps the reference."""

    name: str
    version: str
    run_id: str | None
    features: tuple[Feature, ...]
    scorer: Scorer
    fast_path: str
    load_seconds: float

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def score(self, X: NDArray[np.float64]) -> Scores:
        return self.scorer(X)


def signature_features(signature: Any) -> tuple[Feature, ...]:
    """Features in the model's column order, from an MLflow ModelSignature with a column-based input schema."""
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        raise ModelLoadError("the model has no column signature; it must be registered with named inputs")
    features = []
    for spec in signature.inputs.inputs:
        type_name = str(getattr(spec.type, "name", spec.type))
        if type_name not in NUMERIC_TYPES:
            raise ModelLoadError(f"feature {spec.name!r} has type {type_name}; the server scores numeric features")
        features.append(Feature(spec.name, type_name, bool(getattr(spec, "required", True))))
    return tuple(features)


def build_scorer(pipeline: Any, feature_names: list[str]) -> tuple[Scorer, str]:
    """(scorer over a float64 matrix in ``feature_names`` order, name of the path taken).

    A pipeline that is only an XGBoost classifier is scored with ``Booster.inplace_predict`` on the matrix: no
    DataFrame, no sklearn validation, the same trees and the same float32 arithmetic as ``predict_proba``. Any other
    pipeline goes through its own ``predict_proba`` (or ``score_samples``) on a DataFrame, so what was fitted is
    exactly what scores.
    """
    steps = getattr(pipeline, "steps", [("model", pipeline)])
    model = steps[-1][1]
    if len(steps) == 1 and type(model).__name__ == "XGBClassifier":
        booster = model.get_booster()
        if booster.feature_names is not None and list(booster.feature_names) != feature_names:
            raise ModelLoadError("the booster's feature order differs from the signature's")

        def score_xgboost(X: NDArray[np.float64]) -> Scores:
            # Feature names were checked once at load; per-call validation would only repeat that.
            return np.asarray(booster.inplace_predict(X, validate_features=False), dtype=np.float64)

        return score_xgboost, "xgboost-inplace"

    predict = getattr(pipeline, "predict_proba", None)

    def score_pipeline(X: NDArray[np.float64]) -> Scores:
        frame = pd.DataFrame(X, columns=feature_names)
        if predict is not None:
            return np.asarray(predict(frame)[:, 1], dtype=np.float64)
        return np.asarray(-pipeline.score_samples(frame), dtype=np.float64)

    return score_pipeline, "sklearn-pipeline"


def resolve_version(client: Any, name: str, *, alias: str | None, version: int | None) -> str:
    """The registry's current version for an alias, or the pinned version after checking it exists."""
    from mlflow.exceptions import MlflowException

    try:
        if alias is not None:
            return str(client.get_model_version_by_alias(name, alias).version)
        return str(client.get_model_version(name, str(version)).version)
    except MlflowException as exc:
        what = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise ModelLoadError(f"registered model {name!r} has no {what}: {exc.message}") from exc


def load_servable(client: Any, name: str, version: str) -> ServableModel:
    """Download and prepare one registered version; raises ModelLoadError on anything that would fail a request."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    started = time.perf_counter()
    uri = f"models:/{name}/{version}"
    try:
        details = client.get_model_version(name, version)
        with warnings.catch_warnings():
            # MLflow warns when the serving environment's library versions differ from training's; the image pins
            # them, and a mismatch that matters fails the smoke score below instead.
            warnings.simplefilter("ignore")
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
            signature = Model.load(local).signature
            pipeline = mlflow.sklearn.load_model(local)
    except (MlflowException, OSError) as exc:
        raise ModelLoadError(f"cannot load {uri}: {exc}") from exc
    features = signature_features(signature)
    names = [f.name for f in features]
    fitted_names = getattr(pipeline, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != names:
        raise ModelLoadError(f"{uri}: the signature's columns differ from the fitted pipeline's")
    scorer, path = build_scorer(pipeline, names)
    # A model that cannot score a row of missing values would fail requests later; fail the load instead.
    probe = scorer(np.full((1, len(names)), np.nan))
    if probe.shape != (1,):
        raise ModelLoadError(f"{uri}: the scorer returned shape {probe.shape} for one row")
    return ServableModel(
        name=name,
        version=str(version),
        run_id=getattr(details, "run_id", None),
        features=features,
        scorer=scorer,
        fast_path=path,
        load_seconds=time.perf_counter() - started,
    )
