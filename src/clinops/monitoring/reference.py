"""What a deployed model is monitored against: its registered version, its inputs and their reference profile."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinops.errors import ClinopsError

PROFILE_TAG = "clinops.reference_profile"
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ProfileError(ClinopsError):
    """The model is not registered, or it was not trained by clinops (no reference profile)."""


@dataclass(frozen=True)
class Reference:
    """A registered version's reference profile, restricted to the model's inputs."""

    model: str
    version: str
    features: tuple[str, ...]
    profile: dict[str, Any]

    def profile_json(self) -> str:
        # Sorted keys: the same profile always serialises to the same text, so its digest names it.
        return json.dumps(self.profile, sort_keys=True, separators=(",", ":"))


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def registered_version(model_uri: str, tracking_uri: str) -> tuple[str, str]:
    """The model name and the version ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` means now."""
    from clinops.serving.model import ModelLoadError, resolve_version

    match = MODEL_URI.match(model_uri)
    if match is None:
        raise ProfileError(f"a model is models:/<name>@<alias> or models:/<name>/<version>, not {model_uri!r}")
    name, pinned = match["name"], int(match["version"]) if match["version"] else None
    try:
        return name, resolve_version(_client(tracking_uri), name, alias=match["alias"], version=pinned)
    except (ModelLoadError, OSError) as exc:
        raise ProfileError(str(exc)) from exc


def reference_of(name: str, version: str, tracking_uri: str) -> Reference:
    """The reference profile of a registered version over the model's inputs.

    The training run profiles subgroup columns too; the prediction log carries only the model's inputs, so only
    those are kept.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    from clinops.serving.model import ModelLoadError, signature_features

    try:
        tags = _client(tracking_uri).get_model_version(name, version).tags
        if PROFILE_TAG not in tags:
            raise ProfileError(f"models:/{name}/{version} has no {PROFILE_TAG} tag: it was not trained by clinops")
        with tempfile.TemporaryDirectory(prefix="clinops-reference-") as scratch:
            profile_file = mlflow.artifacts.download_artifacts(
                artifact_uri=tags[PROFILE_TAG], tracking_uri=tracking_uri, dst_path=scratch
            )
            profile = json.loads(Path(profile_file).read_text())
            model_dir = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
                dst_path=scratch,
            )
            features = tuple(feature.name for feature in signature_features(Model.load(model_dir).signature))
    except (MlflowException, ModelLoadError, OSError, ValueError) as exc:
        raise ProfileError(f"cannot read the reference profile of models:/{name}/{version}: {exc}") from exc
    unprofiled = [feature for feature in features if feature not in profile["features"]]
    if unprofiled:
        raise ProfileError(f"models:/{name}/{version}: inputs missing from its profile: {', '.join(unprofiled)}")
    profile["features"] = {feature: profile["features"][feature] for feature in features}
    return Reference(model=name, version=version, features=features, profile=profile)
