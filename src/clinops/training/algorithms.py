"""Per algorithm: the model pipeline (preprocessing travels with the model) and its default search space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from clinops.specs.training_job import Algorithm, ParameterRange

DEFAULT_SEARCH_SPACES: dict[Algorithm, dict[str, ParameterRange]] = {
    Algorithm.XGBOOST: {
        "n_estimators": ParameterRange(type="int", low=100, high=600),
        "max_depth": ParameterRange(type="int", low=2, high=6),
        "learning_rate": ParameterRange(type="loguniform", low=0.01, high=0.2),
        "subsample": ParameterRange(type="uniform", low=0.6, high=1.0),
        "colsample_bytree": ParameterRange(type="uniform", low=0.4, high=1.0),
        "min_child_weight": ParameterRange(type="loguniform", low=1, high=20),
        "reg_lambda": ParameterRange(type="loguniform", low=0.1, high=10),
    },
    Algorithm.RANDOM_FOREST: {
        "n_estimators": ParameterRange(type="int", low=100, high=400),
        "max_depth": ParameterRange(type="int", low=4, high=16),
        "min_samples_leaf": ParameterRange(type="int", low=1, high=30),
        "max_features": ParameterRange(type="uniform", low=0.1, high=0.6),
    },
    Algorithm.LOGISTIC_REGRESSION: {
        "C": ParameterRange(type="loguniform", low=1e-3, high=10),
    },
    Algorithm.ISOLATION_FOREST: {
        "n_estimators": ParameterRange(type="int", low=100, high=400),
        "max_samples": ParameterRange(type="uniform", low=0.2, high=1.0),
        "max_features": ParameterRange(type="uniform", low=0.3, high=1.0),
    },
}
# The parameter that sets the model's size: trials grow it rung by rung so ASHA can stop weak ones early.
BUDGET_PARAMETER: dict[Algorithm, str | None] = {
    Algorithm.XGBOOST: "n_estimators",
    Algorithm.RANDOM_FOREST: "n_estimators",
    Algorithm.LOGISTIC_REGRESSION: None,
    Algorithm.ISOLATION_FOREST: "n_estimators",
}


def search_space(algorithm: Algorithm, overrides: Mapping[str, ParameterRange] | None = None) -> dict[str, Any]:
    """Ray Tune domains for ``algorithm``: the defaults, with the spec's overrides replacing or adding parameters."""
    from ray import tune

    ranges = {**DEFAULT_SEARCH_SPACES[algorithm], **(overrides or {})}
    domains: dict[str, Any] = {}
    for name, r in ranges.items():
        if r.type == "choice":
            domains[name] = tune.choice(list(r.values or []))
            continue
        low, high = float(r.low or 0.0), float(r.high or 0.0)  # validated present for these types
        if r.type == "int":
            domains[name] = tune.randint(int(low), int(high) + 1)
        elif r.type == "loguniform":
            domains[name] = tune.loguniform(low, high)
        else:
            domains[name] = tune.uniform(low, high)
    return domains


def build_pipeline(algorithm: Algorithm, params: Mapping[str, Any], *, seed: int = 0) -> Pipeline:
    """An unfitted sklearn Pipeline: what is fitted, registered and served is this one object."""
    impute = ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))
    if algorithm is Algorithm.XGBOOST:
        # XGBoost learns what a missing value means; imputing would erase that signal.
        model = XGBClassifier(**params, tree_method="hist", n_jobs=1, random_state=seed, eval_metric="auc")
        return Pipeline([("model", model)])
    if algorithm is Algorithm.RANDOM_FOREST:
        return Pipeline([impute, ("model", RandomForestClassifier(**params, n_jobs=1, random_state=seed))])
    if algorithm is Algorithm.LOGISTIC_REGRESSION:
        return Pipeline([impute, ("scale", StandardScaler()), ("model", LogisticRegression(**params, max_iter=5000))])
    return Pipeline([impute, ("model", IsolationForest(**params, n_jobs=1, random_state=seed))])


def predict_scores(pipeline: Pipeline, X: pd.DataFrame) -> NDArray[np.float64]:
    """Higher means more likely positive: a probability for classifiers, an anomaly score for isolation forest."""
    model = pipeline.steps[-1][1]
    if isinstance(model, IsolationForest):
        return np.asarray(-pipeline.score_samples(X), dtype=np.float64)
    return np.asarray(pipeline.predict_proba(X)[:, 1], dtype=np.float64)
