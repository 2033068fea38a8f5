"""Where a server's ModelDeployment comes from: a mounted file (re-read when it changes) or the environment."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from clinops import config
from clinops.errors import ClinopsError
from clinops.specs.common import ObjectMeta, load_resource, parse_resource
from clinops.specs.model_deployment import ModelDeployment, ModelDeploymentSpec

DEPLOYMENT_FILE_ENV = "CLINOPS_DEPLOYMENT_FILE"
DEPLOYMENT_JSON_ENV = "CLINOPS_DEPLOYMENT"
KAFKA_ENV = "CLINOPS_KAFKA_BOOTSTRAP"


@dataclass
class ServerSettings:
    deployment: ModelDeployment
    tracking_uri: str = field(default_factory=config.tracking_uri)
    lake_root: str = field(default_factory=config.lake_root)
    kafka_bootstrap: str | None = field(default_factory=lambda: os.environ.get(KAFKA_ENV) or None)
    # A mounted ConfigMap: re-read on every reload tick, so a new canary split needs no restart.
    deployment_file: Path | None = None

    @property
    def spec(self) -> ModelDeploymentSpec:
        return self.deployment.spec


def deployment_from_spec(name: str, spec: ModelDeploymentSpec) -> ModelDeployment:
    return ModelDeployment(metadata=ObjectMeta(name=name), spec=spec)


def load_deployment_file(path: Path) -> tuple[ModelDeployment, str]:
    """The resource and a digest of the file's bytes (the cheap way to notice a change)."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ClinopsError(f"cannot read {path}: {exc}") from exc
    return load_resource(ModelDeployment, path), digest


def settings_from_environment() -> ServerSettings:
    """The container entry point's configuration: a mounted file wins over inline JSON."""
    path = os.environ.get(DEPLOYMENT_FILE_ENV)
    if path:
        deployment, _ = load_deployment_file(Path(path))
        return ServerSettings(deployment=deployment, deployment_file=Path(path))
    inline = os.environ.get(DEPLOYMENT_JSON_ENV)
    if inline:
        try:
            document = orjson.loads(inline)
        except orjson.JSONDecodeError as exc:
            raise ClinopsError(f"{DEPLOYMENT_JSON_ENV} is not valid JSON: {exc}") from exc
        return ServerSettings(deployment=parse_resource(ModelDeployment, document, source=DEPLOYMENT_JSON_ENV))
    raise ClinopsError(f"set {DEPLOYMENT_FILE_ENV} (a ModelDeployment YAML) or {DEPLOYMENT_JSON_ENV} (its JSON)")
