"""Rendering the clinops chart with helm template as a cluster with (or without) the third-party APIs would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.e2e.helm import CHART, Helm

RELEASE = "clinops"
SCENARIOS = CHART / "scenarios"
STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic"}
STRIMZI = [f"kafka.strimzi.io/v1beta2/{kind}" for kind in sorted(STRIMZI_KINDS)]
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
PROMETHEUS_OPERATOR = [f"monitoring.coreos.com/v1/{kind}" for kind in sorted(MONITORING_KINDS)]
FLINK = ["flink.apache.org/v1beta1/FlinkDeployment"]
# What chart_crds installs: helm template sees an API only when told, as helm install asks the cluster.
ALL_APIS = [*STRIMZI, *PROMETHEUS_OPERATOR, *FLINK]
# The alerts, one file for the PrometheusRule, the in-namespace Prometheus and promtool.
ALERTS = CHART / "files" / "alerts.yaml"


Doc = dict[str, Any]


def _template(
    options: tuple[str, ...], apis: list[str] | None, values: Path | None, namespace: str, release: str
) -> list[str]:
    args = ["template", release, str(CHART), "-n", namespace]
    for api in ALL_APIS if apis is None else apis:
        args += ["--api-versions", api]
    if values is not None:
        args += ["-f", str(values)]
    return [*args, *options]


def render(
    helm: Helm,
    *options: str,
    apis: list[str] | None = None,
    values: Path | None = None,
    namespace: str = "ml",
    release: str = RELEASE,
    check: bool = True,
) -> list[Doc]:
    done = helm(*_template(options, apis, values, namespace, release), check=check)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def refused(
    helm: Helm,
    *options: str,
    apis: list[str] | None = None,
    values: Path | None = None,
    namespace: str = "ml",
    release: str = RELEASE,
) -> str:
    """What helm said when it refused to render the chart so."""
    done = helm(*_template(options, apis, values, namespace, release), check=False)
    assert done.returncode != 0, done.stdout
    return done.stderr


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def container(doc: Doc, name: str | None = None) -> Doc:
    containers = pod_spec(doc)["containers"]
    (found,) = [c for c in containers if name is None or c["name"] == name]
    return found


def env(doc: Doc, name: str | None = None) -> dict[str, Any]:
    """A container's environment: plain values as strings, references as their valueFrom."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(doc, name).get("env", [])}


def kinds(documents: list[dict[str, Any]]) -> set[str]:
    return {doc["kind"] for doc in documents}


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[d['metadata']['name'] for d in documents]}"
    return found[0]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind]
