"""``clinops-operator``: run the operator for some namespaces or the whole cluster, with liveness and metrics."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import kopf

import clinops_operator.handlers  # noqa: F401  (registers the handlers with kopf)
from clinops_operator import metrics

DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clinops-operator", description=__doc__)
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        help="Namespace to watch (repeatable; env CLINOPS_WATCH_NAMESPACES, comma-separated). Default: all.",
    )
    parser.add_argument(
        "--liveness",
        default=os.environ.get("CLINOPS_OPERATOR_LIVENESS", DEFAULT_LIVENESS),
        help="URL of the liveness endpoint kopf serves ('' for none).",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=os.environ.get("CLINOPS_OPERATOR_METRICS_PORT", "0"),
        help="Port of the Prometheus /metrics endpoint (0, the default, for none).",
    )
    parser.add_argument("--verbose", action="store_true", help="Log kopf's own progress too.")
    args = parser.parse_args(argv)
    listed = os.environ.get("CLINOPS_WATCH_NAMESPACES", "").split(",")
    namespaces = args.namespaces or [namespace.strip() for namespace in listed if namespace.strip()]
    if not 0 <= args.metrics_port <= 65535:
        parser.error(f"--metrics-port must be 0..65535, not {args.metrics_port}")
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness or None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
