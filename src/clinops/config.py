"""Where the embedded default keeps its state, overridable by the environment."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("CLINOPS_HOME", ".clinops"))


def lake_root() -> str:
    return os.environ.get("CLINOPS_LAKE", str(data_dir() / "lake"))


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set; otherwise an embedded SQLite store under the data dir (no server needed)."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    store = (data_dir() / "mlflow").resolve()
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def artifact_root() -> str:
    return (data_dir() / "mlflow" / "artifacts").resolve().as_uri()
