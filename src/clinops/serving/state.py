"""What the server currently serves, kept current: the registry is polled and a moved alias is swapped in."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from clinops.errors import ClinopsError
from clinops.serving.metrics import ServerMetrics
from clinops.serving.model import ModelLoadError, ServableModel, load_servable, resolve_version
from clinops.serving.routing import CANARY, PRIMARY, Routing
from clinops.serving.schema import PredictSchema
from clinops.serving.settings import ServerSettings, load_deployment_file
from clinops.specs.model_deployment import ModelDeploymentSpec

logger = logging.getLogger(__name__)
# Until the first model is loaded, retry sooner than the configured interval: readiness waits on it.
STARTUP_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Served:
    """Routing plus the request schema of its primary, swapped together as one reference."""

    routing: Routing
    schema: PredictSchema
    spec: ModelDeploymentSpec
    # Positions of the canary's features among the primary's, so one parsed matrix feeds both variants.
    canary_columns: np.ndarray[Any, np.dtype[np.intp]] | None = None
    canary_error: str | None = None

    def versions(self) -> list[str]:
        served = [self.routing.primary.version]
        if self.routing.canary is not None:
            served.append(self.routing.canary.version)
        return served


def canary_columns(primary: ServableModel, canary: ServableModel) -> np.ndarray[Any, np.dtype[np.intp]]:
    """A canary answers the primary's requests, so it may only need features the primary's schema accepts."""
    position = {name: i for i, name in enumerate(primary.feature_names)}
    extra = [name for name in canary.feature_names if name not in position]
    if extra:
        raise ModelLoadError(
            f"canary version {canary.version} needs features the primary's requests do not carry: {extra[:5]}"
        )
    return np.array([position[name] for name in canary.feature_names], dtype=np.intp)


class ServingState:
    def __init__(self, settings: ServerSettings, metrics: ServerMetrics) -> None:
        import mlflow
        from mlflow import MlflowClient

        # models:/ URIs are resolved through the process-global registry in parts of MLflow that take no URI
        # argument; a server serves one registry, so make it the global one.
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        self.settings = settings
        self.metrics = metrics
        self.spec = settings.spec
        self.client = MlflowClient(tracking_uri=settings.tracking_uri)
        self.served: Served | None = None
        self.draining = False
        self.last_error: str | None = None
        self._file_digest: str | None = None
        self._loaded: dict[str, ServableModel] = {}

    @property
    def ready(self) -> bool:
        return self.served is not None and not self.draining

    @property
    def model_name(self) -> str:
        return self.spec.model.name

    async def run(self) -> None:
        """Keep the served versions current until cancelled; failures are logged and retried, never raised."""
        while True:
            try:
                await self.refresh()
                self.last_error = None
            except (ClinopsError, OSError) as exc:
                self.last_error = str(exc)
                logger.error("Model refresh failed: %s", exc)
            loaded = self.served is not None
            await asyncio.sleep(self.spec.reload_interval_seconds if loaded else STARTUP_RETRY_SECONDS)

    def _reread_spec(self) -> None:
        path = self.settings.deployment_file
        if path is None:
            return
        deployment, digest = load_deployment_file(path)
        if digest != self._file_digest:
            if self._file_digest is not None:
                logger.info("Reloaded deployment spec from %s", path)
            self._file_digest = digest
            self.spec = deployment.spec

    async def refresh(self) -> None:
        """Resolve what the spec names; load and swap in whatever changed."""
        self._reread_spec()
        spec = self.spec
        name = spec.model.name
        primary_version = await asyncio.to_thread(
            resolve_version, self.client, name, alias=spec.model.alias, version=spec.model.version
        )
        canary_version: str | None = None
        canary_error: str | None = None
        if spec.canary is not None:
            try:
                canary_version = await asyncio.to_thread(
                    resolve_version, self.client, name, alias=spec.canary.alias, version=spec.canary.version
                )
            except ModelLoadError as exc:
                canary_error = str(exc)
        current = self.served
        if (
            current is not None
            and current.spec == spec
            and current.versions() == [primary_version, *([canary_version] if canary_version else [])]
            and current.canary_error == canary_error
        ):
            return
        primary = await self._load(name, primary_version)
        canary: ServableModel | None = None
        columns = None
        if canary_version is not None and canary_version != primary_version:
            try:
                canary = await self._load(name, canary_version)
                columns = canary_columns(primary, canary)
            except ModelLoadError as exc:
                canary, canary_error = None, str(exc)
        if canary_error is not None:
            logger.warning("Serving without the canary: %s", canary_error)
        percent = spec.canary.traffic_percent if spec.canary is not None and canary is not None else 0.0
        served = Served(
            routing=Routing(primary=primary, canary=canary, canary_percent=percent),
            schema=self._schema(primary, current),
            spec=spec,
            canary_columns=columns,
            canary_error=canary_error,
        )
        self._swap(served, current)

    def _schema(self, primary: ServableModel, current: Served | None) -> PredictSchema:
        sticky_key = self.sticky_key
        if (
            current is not None
            and current.schema.sticky_key == sticky_key
            and current.routing.primary.features == primary.features
        ):
            return current.schema
        return PredictSchema(primary.features, sticky_key)

    @property
    def sticky_key(self) -> str:
        return self.spec.canary.sticky_key if self.spec.canary is not None else "patient_id"

    async def _load(self, name: str, version: str) -> ServableModel:
        model = self._loaded.get(version)
        if model is None:
            logger.info("Loading %s version %s", name, version)
            model = await asyncio.to_thread(load_servable, self.client, name, version, self.settings.tracking_uri)
            self.metrics.load_seconds.labels(version).set(model.load_seconds)
            logger.info("Loaded %s version %s in %.2fs (%s)", name, version, model.load_seconds, model.fast_path)
        return model

    def _swap(self, served: Served, previous: Served | None) -> None:
        # One assignment: a request holds either the old Served or the new one, never parts of both.
        self.served = served
        # What is loaded now lives as long as the process: move it out of the collector's sight, so full
        # collections stay short and a request never waits behind a sweep of the libraries' objects.
        gc.freeze()
        self._loaded = {m.version: m for m in (served.routing.primary, served.routing.canary) if m is not None}
        self.metrics.reloads.labels("initial" if previous is None else "swapped").inc()
        self.metrics.loaded.clear()
        self.metrics.loaded.labels(served.routing.primary.version, PRIMARY).set(1)
        if served.routing.canary is not None:
            self.metrics.loaded.labels(served.routing.canary.version, CANARY).set(1)
        logger.info(
            "Serving %s version %s%s",
            self.model_name,
            served.routing.primary.version,
            f", canary version {served.routing.canary.version} at {served.routing.canary_percent:g}%"
            if served.routing.canary is not None
            else "",
        )
