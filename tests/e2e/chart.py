"""Rendering the clinops chart with helm template as a cluster with (or without) the third-party APIs would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.e2e.helm import CHART, Helm

RELEASE = "clinops"
SCENARIOS = CHART / "scenarios"
STRIMZI = [f"kafka.strimzi.io/v1beta2/{kind}" for kind in ("Kafka", "KafkaNodePool", "KafkaTopic")]
PROMETHEUS_OPERATOR = [
    f"monitoring.coreos.com/v1/{kind}" for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule")
]
FLINK = ["flink.apache.org/v1beta1/FlinkDeployment"]
# What chart_crds installs: helm template sees an API only when told, as helm install asks the cluster.
ALL_APIS = [*STRIMZI, *PROMETHEUS_OPERATOR, *FLINK]
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def render(
    helm: Helm,
    *options: str,
    apis: list[str] | None = None,
    values: Path | None = None,
    namespace: str = "ml",
    release: str = RELEASE,
    check: bool = True,
) -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "-n", namespace]
    for api in ALL_APIS if apis is None else apis:
        args += ["--api-versions", api]
    if values is not None:
        args += ["-f", str(values)]
    done = helm(*args, *options, check=check)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def kinds(documents: list[dict[str, Any]]) -> set[str]:
    return {doc["kind"] for doc in documents}


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[d['metadata']['name'] for d in documents]}"
    return found[0]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]
