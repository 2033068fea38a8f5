"""The operator's Prometheus metrics: reconciles and reconcile errors per kind, served when a port is given."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from wsgiref.simple_server import WSGIServer

import kopf
from prometheus_client import CollectorRegistry, Counter, start_http_server

P = ParamSpec("P")
R = TypeVar("R")

# Its own registry: kopf and the libraries it loads never add process collectors the alerts do not read.
REGISTRY = CollectorRegistry(auto_describe=True)
RECONCILES = Counter(
    "clinops_operator_reconciles",
    "Reconcile handler runs, by kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "clinops_operator_reconcile_errors",
    "Reconcile handler runs that raised, by kind and error (temporary: kopf retries; permanent: the spec is refused; "
    "unexpected: any other exception, which kopf also retries).",
    ["kind", "error"],
    registry=REGISTRY,
)


def _error(exc: BaseException) -> str:
    if isinstance(exc, kopf.TemporaryError):
        return "temporary"
    if isinstance(exc, kopf.PermanentError):
        return "permanent"
    return "unexpected"


def reconciled(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Counts every run of a (synchronous) reconcile handler of ``kind``, and the ones that raise by error class."""

    def decorate(handler: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(handler)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = handler(*args, **kwargs)
            except Exception as exc:
                error = _error(exc)
                RECONCILES.labels(kind, "error").inc()
                RECONCILE_ERRORS.labels(kind, error).inc()
                raise
            RECONCILES.labels(kind, "success").inc()
            return result

        return counted

    return decorate


def serve(port: int, address: str = "0.0.0.0") -> WSGIServer:
    """Serves ``/metrics`` from a daemon thread, for the life of the process unless the server is shut down."""
    server, _thread = start_http_server(port, addr=address, registry=REGISTRY)
    return server
