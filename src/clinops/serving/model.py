"""A registered model made ready to serve: resolved version, feature schema from its signature and a fast scorer."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clinops.errors import ClinopsError
from clinops.serving.compile import Scorer, Scores, compile_scorer

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


def probe_rows(example: pd.DataFrame | None, feature_names: list[str]) -> NDArray[np.float64]:
    """Rows on which a fast scorer must reproduce the pipeline: the logged example, varied, and all-missing."""
    width = len(feature_names)
    base = (
        example[feature_names].to_numpy(dtype=np.float64)
        if example is not None and set(feature_names) <= set(example.columns)
        else np.zeros((1, width))
    )
    rng = np.random.default_rng(0)
    varied = base[rng.integers(0, len(base), 40)] * rng.uniform(0.5, 1.5, (40, width))
    varied[rng.random(varied.shape) < 0.2] = np.nan
    return np.vstack([base, varied, np.full((1, width), np.nan)])


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


def load_servable(client: Any, name: str, version: str, tracking_uri: str) -> ServableModel:
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
            # The server's registry, not whatever the process-global tracking URI happens to be.
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, tracking_uri=tracking_uri, registry_uri=tracking_uri
            )
            logged = Model.load(local)
            signature = logged.signature
            example = logged.load_input_example(local)
            if not isinstance(example, pd.DataFrame):
                example = None
            pipeline = mlflow.sklearn.load_model(local)
    except (MlflowException, OSError) as exc:
        raise ModelLoadError(f"cannot load {uri}: {exc}") from exc
    features = signature_features(signature)
    names = [f.name for f in features]
    fitted_names = getattr(pipeline, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != names:
        raise ModelLoadError(f"{uri}: the signature's columns differ from the fitted pipeline's")
    try:
        # A model that cannot score the probe (an all-missing row among them) would fail requests: fail the load.
        scorer, path = compile_scorer(pipeline, names, probe_rows(example, names))
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{uri}: the model cannot score its own input example: {exc}") from exc
    return ServableModel(
        name=name,
        version=str(version),
        run_id=getattr(details, "run_id", None),
        features=features,
        scorer=scorer,
        fast_path=path,
        load_seconds=time.perf_counter() - started,
    )
