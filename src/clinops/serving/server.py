"""Runs the model server under uvicorn with a Kubernetes-friendly shutdown: unready first, then drain, then stop."""

from __future__ import annotations

import asyncio
import logging
import time
from types import FrameType

import orjson
import uvicorn

from clinops.serving.app import create_app
from clinops.serving.settings import ServerSettings

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT readiness turns false at once; uvicorn stops accepting only after the grace period.

    The grace period lets the endpoints controller take the pod out of its Service before connections are refused;
    uvicorn then lets in-flight requests finish before the lifespan flushes the prediction log. A second signal
    stops at once.
    """

    def __init__(self, config: uvicorn.Config, grace_seconds: float) -> None:
        super().__init__(config)
        self.grace_seconds = grace_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.loaded_app
        state = getattr(getattr(getattr(app, "app", app), "state", None), "serving", None)
        if self._draining or state is None or self.grace_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        state.draining = True
        logger.info("Draining: not ready, stopping in %.1fs", self.grace_seconds)
        # Signal handlers run between bytecodes of the loop's thread: schedule through the self-pipe so a loop idle
        # in select() wakes to arm the timer.
        loop = asyncio.get_running_loop()
        loop.call_soon_threadsafe(loop.call_later, self.grace_seconds, super().handle_exit, sig, frame)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, as log collectors in a cluster expect."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def log_config() -> dict[str, object]:
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            "clinops": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def serve(settings: ServerSettings, *, host: str = "127.0.0.1", port: int = 8080, access_log: bool = False) -> None:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        # Per-request access lines would cost more than a prediction; metrics carry the same facts.
        access_log=access_log,
        log_config=log_config(),
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    DrainingServer(config, settings.spec.shutdown_grace_seconds).run()
