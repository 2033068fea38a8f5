"""The FastAPI model server: simple JSON and Open Inference Protocol V2 predictions, health, metrics.

Prediction handlers take the raw request and answer with pre-serialised bytes: FastAPI's body parsing and response
validation would cost more than scoring a row. The request schema still reaches the OpenAPI document (built from
the served model's signature), and 422 answers carry the same field errors FastAPI would give.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from numpy.typing import NDArray
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clinops import __version__
from clinops.lake.store import Lake
from clinops.serving import v2
from clinops.serving.metrics import ServerMetrics
from clinops.serving.prediction_log import KafkaSink, LakeSink, PredictionLog, Sink
from clinops.serving.routing import CANARY, PRIMARY
from clinops.serving.schema import RequestError, Rows
from clinops.serving.settings import ServerSettings
from clinops.serving.state import Served, ServingState

logger = logging.getLogger(__name__)
JSON = "application/json"
NOT_READY = orjson.dumps({"detail": "no model loaded yet"})


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given and len(given) <= 128 and given.isprintable() else uuid.uuid4().hex


class Scored:
    """One request's answer: per row, its score, label, variant and version."""

    __slots__ = ("labels", "scores", "variants", "versions")

    def __init__(self, scores: NDArray[np.float64], threshold: float, variants: list[str], versions: list[str]) -> None:
        self.scores = scores
        self.labels = (scores >= threshold).astype(np.int64)
        self.variants = variants
        self.versions = versions


def score_rows(served: Served, rows: Rows) -> Scored:
    routing, threshold = served.routing, served.spec.threshold
    primary = routing.primary
    if routing.canary is None:
        n = len(rows.keys)
        return Scored(primary.score(rows.X), threshold, [PRIMARY] * n, [primary.version] * n)
    chosen = [routing.variant_for(key) for key in rows.keys]
    is_canary = np.fromiter((variant == CANARY for variant, _ in chosen), dtype=bool, count=len(chosen))
    scores = np.empty(len(chosen))
    if (~is_canary).any():
        scores[~is_canary] = primary.score(rows.X[~is_canary])
    if is_canary.any():
        assert served.canary_columns is not None
        scores[is_canary] = routing.canary.score(rows.X[is_canary][:, served.canary_columns])
    return Scored(scores, threshold, [v for v, _ in chosen], [m.version for _, m in chosen])


def _sink(settings: ServerSettings) -> Sink:
    topic = settings.spec.prediction_log.topic
    if settings.kafka_bootstrap:
        return KafkaSink(settings.kafka_bootstrap, topic, settings.spec.prediction_log.buffer_size)
    return LakeSink(Lake(settings.lake_root), topic)


def create_app(settings: ServerSettings) -> FastAPI:
    metrics = ServerMetrics()
    state = ServingState(settings, metrics)
    log_spec = settings.spec.prediction_log
    prediction_log = (
        PredictionLog(_sink(settings), metrics, buffer_size=log_spec.buffer_size, flush_seconds=log_spec.flush_seconds)
        if log_spec.enabled
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(state.run(), name="model-watcher")
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if prediction_log is not None:
                await asyncio.to_thread(prediction_log.close)

    app = FastAPI(
        title="clinops model server",
        version=__version__,
        description="Scores registered models: simple JSON at /predict, Open Inference Protocol V2 under /v2.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.state.metrics = metrics

    # labels() hashes its arguments and takes a lock on every call; the label sets are few, so keep the children.
    @functools.cache
    def request_series(version: str, variant: str, status: int, endpoint: str) -> tuple[Any, Any]:
        labels = (version, variant, str(status), endpoint)
        return metrics.requests.labels(*labels), metrics.latency.labels(*labels)

    @functools.cache
    def score_series(version: str, variant: str) -> tuple[Any, Any]:
        return metrics.scores.labels(version, variant), metrics.rows.labels(version, variant)

    def record(endpoint: str, variant: str, version: str, status: int, started: float) -> None:
        count, latency = request_series(version, variant, status, endpoint)
        count.inc()
        latency.observe(time.perf_counter() - started)

    def answered(served: Served, request_id: str, rows: Rows, scored: Scored, endpoint: str, started: float) -> None:
        variants, versions = scored.variants, scored.versions
        uniform = len(set(versions)) == 1
        for v, ver, score in zip(variants, versions, scored.scores.tolist(), strict=True):
            histogram, counter = score_series(ver, v)
            histogram.observe(score)
            counter.inc()
        record(endpoint, variants[0] if uniform else "mixed", versions[0] if uniform else "mixed", 200, started)
        if prediction_log is not None and log_spec.sample_rate > 0:
            prediction_log.submit(
                request_id=request_id,
                model=state.model_name,
                versions=versions,
                variants=variants,
                keys=rows.keys,
                feature_names=served.routing.primary.feature_names,
                X=rows.X,
                scores=scored.scores,
                sample_rate=log_spec.sample_rate,
            )

    @app.get("/health/live", tags=["health"], summary="The process is up")
    async def live() -> Response:
        return _json({"status": "live"})

    @app.get("/health/ready", tags=["health"], summary="A model is loaded and the server is not draining")
    async def ready() -> Response:
        if not state.ready:
            reason = "draining" if state.draining else (state.last_error or "loading")
            return _json({"status": "not ready", "reason": reason}, 503)
        return _json({"status": "ready", "versions": state.served.versions() if state.served else []})

    @app.get("/status", tags=["health"], summary="What is served: versions, fast path, canary share")
    async def status() -> Response:
        served = state.served
        if served is None:
            return _json({"model": state.model_name, "ready": False, "error": state.last_error})
        routing = served.routing
        return _json(
            {
                "model": state.model_name,
                "ready": state.ready,
                "primary": {"version": routing.primary.version, "path": routing.primary.fast_path},
                "canary": None
                if routing.canary is None
                else {"version": routing.canary.version, "trafficPercent": routing.canary_percent},
                "canaryError": served.canary_error,
                "stickyKey": served.schema.sticky_key,
                "threshold": served.spec.threshold,
                "error": state.last_error,
            }
        )

    @app.post(
        "/predict",
        tags=["predict"],
        summary="Score one instance or a batch",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
            }
        },
        responses={
            200: {"description": "Scores with the version and variant that produced them"},
            422: {"description": "Field errors"},
            503: {"description": "No model loaded yet"},
        },
    )
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        served = state.served  # read once: this request stays on these versions whatever swaps meanwhile
        if served is None:
            return Response(NOT_READY, 503, media_type=JSON)
        metrics.in_flight.inc()
        try:
            request_id = _request_id(request)
            try:
                rows = served.schema.parse(await request.body())
            except RequestError as exc:
                record("predict", "", "", 422, started)
                return _json({"detail": exc.errors}, 422)
            scored = score_rows(served, rows)
            if rows.single:
                body: dict[str, Any] = {
                    "request_id": request_id,
                    "model": state.model_name,
                    "model_version": scored.versions[0],
                    "variant": scored.variants[0],
                    "score": float(scored.scores[0]),
                    "label": int(scored.labels[0]),
                }
            else:
                body = {
                    "request_id": request_id,
                    "model": state.model_name,
                    "predictions": [
                        {"score": s, "label": label, "model_version": ver, "variant": var}
                        for s, label, ver, var in zip(
                            scored.scores.tolist(),
                            scored.labels.tolist(),
                            scored.versions,
                            scored.variants,
                            strict=True,
                        )
                    ],
                }
            answered(served, request_id, rows, scored, "predict", started)
            return Response(orjson.dumps(body), media_type=JSON, headers={"x-request-id": request_id})
        finally:
            metrics.in_flight.dec()

    # --- Open Inference Protocol V2 -------------------------------------------------------------------------------

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def v2_server() -> Response:
        return _json({"name": "clinops", "version": __version__, "extensions": []})

    @app.get("/v2/health/live", tags=["v2"], summary="Server live")
    async def v2_live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", tags=["v2"], summary="Server ready")
    async def v2_ready() -> Response:
        return _json({"ready": state.ready}, 200 if state.ready else 503)

    def served_model(name: str, version: str | None) -> Served | Response:
        served = state.served
        if name != state.model_name:
            return _json({"error": f"unknown model {name!r}; this server serves {state.model_name!r}"}, 404)
        if served is None:
            return _json({"error": "no model loaded yet"}, 503)
        if version is not None and version not in served.versions():
            return _json({"error": f"version {version} is not served; served: {served.versions()}"}, 404)
        return served

    @app.get("/v2/models/{name}", tags=["v2"], summary="Model metadata")
    async def v2_metadata(name: str) -> Response:
        found = served_model(name, None)
        if isinstance(found, Response):
            return found
        return _json(v2.model_metadata(name, found.versions(), found.routing.primary.features, found.schema.sticky_key))

    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], summary="Model version metadata")
    async def v2_version_metadata(name: str, version: str) -> Response:
        found = served_model(name, version)
        if isinstance(found, Response):
            return found
        model = found.routing.primary if found.routing.primary.version == version else found.routing.canary
        assert model is not None
        return _json(v2.model_metadata(name, [version], model.features, found.schema.sticky_key))

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="Model ready")
    async def v2_model_ready(name: str) -> Response:
        found = served_model(name, None)
        if isinstance(found, Response):
            return found
        return _json({"name": name, "ready": state.ready}, 200 if state.ready else 503)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], summary="Model version ready")
    async def v2_version_ready(name: str, version: str) -> Response:
        found = served_model(name, version)
        if isinstance(found, Response):
            return found
        return _json({"name": name, "ready": state.ready}, 200 if state.ready else 503)

    async def infer(request: Request, name: str, version: str | None) -> Response:
        started = time.perf_counter()
        found = served_model(name, version)
        if isinstance(found, Response):
            return found
        metrics.in_flight.inc()
        try:
            request_id = _request_id(request)
            primary = found.routing.primary
            try:
                parsed, rows = v2.parse_infer(await request.body(), primary.features, found.schema.sticky_key)
            except RequestError as exc:
                record("v2_infer", "", "", 422, started)
                return _json({"error": str(exc), "detail": exc.errors}, 422)
            request_id = parsed.id or request_id
            if version is not None:
                pinned = found.routing.canary if version != primary.version else None
                if pinned is not None:
                    assert found.canary_columns is not None
                    scores = pinned.score(rows.X[:, found.canary_columns])
                    variant = CANARY
                else:
                    scores, variant = primary.score(rows.X), PRIMARY
                n = len(scores)
                scored = Scored(scores, found.spec.threshold, [variant] * n, [version] * n)
            else:
                scored = score_rows(found, rows)
            answered(found, request_id, rows, scored, "v2_infer", started)
            return _json(
                v2.infer_response(
                    model_name=name,
                    request_id=request_id,
                    versions=scored.versions,
                    variants=scored.variants,
                    scores=scored.scores.tolist(),
                    labels=scored.labels.tolist(),
                )
            )
        finally:
            metrics.in_flight.dec()

    infer_doc: dict[str, Any] = {
        "tags": ["v2"],
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/InferRequest"}}},
            }
        },
        "responses": {422: {"description": "Field errors"}, 404: {"description": "Unknown model or version"}},
    }

    @app.post("/v2/models/{name}/infer", summary="Infer", **infer_doc)
    async def v2_infer(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer", summary="Infer on one served version", **infer_doc)
    async def v2_infer_version(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    @app.get("/metrics", tags=["metrics"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        if prediction_log is not None:
            metrics.log_buffered.set(prediction_log.buffered)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        # Rebuilt on every call: the request schema follows the served model's signature, which a reload changes.
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        served = state.served
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components["PredictRequest"] = (
            served.schema.json_schema() if served is not None else {"type": "object", "description": "loading"}
        )
        infer_schema = v2.InferRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(infer_schema.pop("$defs", {}))
        components["InferRequest"] = infer_schema
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    return app
