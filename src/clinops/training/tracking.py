"""MLflow connection: the embedded SQLite default or a server, checked before any work starts."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from clinops import config
from clinops.errors import ClinopsError


class TrackingError(ClinopsError):
    """The MLflow tracking server cannot be used."""


def configure_tracking(uri: str | None = None) -> str:
    """Point mlflow at ``uri`` (default: MLFLOW_TRACKING_URI or the embedded store) after checking it answers."""
    import mlflow

    uri = uri or config.tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(f"MLflow tracking server at {uri} is unreachable: {exc}") from exc
        # Fail fast later too: the default is minutes of retries against a dead server.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str, tracking_uri: str) -> str:
    """The experiment's id, created on first use; embedded stores keep artifacts under the data dir."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = config.artifact_root() if tracking_uri.startswith("sqlite:") else None
    return str(client.create_experiment(name, artifact_location=location))
