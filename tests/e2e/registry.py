"""A real MLflow registry (SQLite) with clinops-trained versions, for the tests of what the operator reads from it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinops.monitoring.profile import reference_profile
from clinops.specs.training_job import Algorithm

INPUTS = ["heart_rate", "lactate", "age"]


class Registry:
    """A real MLflow registry (SQLite) holding clinops-trained versions: a model, its profile tag, an alias."""

    def __init__(self, root: Path) -> None:
        import mlflow

        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.root = root
        self.model = f"sepsis-{uuid.uuid4().hex[:6]}"
        mlflow.set_tracking_uri(self.uri)
        self.experiment = mlflow.create_experiment("clinops/drift-e2e", artifact_location=str(root / "artifacts"))

    def register(self, seed: int) -> tuple[str, dict[str, Any]]:
        """A new version, made the champion; its reference profile over the model's inputs."""
        import mlflow
        from mlflow import MlflowClient

        from clinops.training.steps import PROFILE_ARTIFACT, fit_pipeline, log_registered_model

        rng = np.random.default_rng(seed)
        frame = pd.DataFrame(
            {
                "heart_rate": rng.normal(80, 10, 500),
                "lactate": rng.lognormal(0.3, 0.6, 500),
                "age": rng.integers(18, 95, 500).astype(float),
                "ward": rng.choice(["icu", "general"], 500),
            }
        )
        target = (frame["lactate"] > 1.5).astype(int)
        with mlflow.start_run(experiment_id=self.experiment) as run:
            pipeline = fit_pipeline(Algorithm.LOGISTIC_REGRESSION, {"C": 1.0}, frame[INPUTS], target, seed=seed)
            # As training logs it: the inputs plus a subgroup column the monitor must leave out.
            mlflow.log_dict(reference_profile(frame), PROFILE_ARTIFACT)
            version = log_registered_model(pipeline, frame[INPUTS], self.model, Algorithm.LOGISTIC_REGRESSION)
        registry = MlflowClient(self.uri)
        registry.set_model_version_tag(
            self.model, version, "clinops.reference_profile", f"runs:/{run.info.run_id}/{PROFILE_ARTIFACT}"
        )
        registry.set_registered_model_alias(self.model, "champion", version)
        return version, reference_profile(frame[INPUTS])
