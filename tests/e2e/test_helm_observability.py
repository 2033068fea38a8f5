"""The chart's observability: alerts unit-tested with promtool, dashboards and alerts naming only metrics the code
exports, and monitors, rules, dashboards and the in-namespace stack rendered exactly when they should be."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from clinops.serving.metrics import ServerMetrics
from clinops.stack.fetch import cache_root
from clinops.streaming.metrics import IngestMetrics
from clinops_operator import metrics as operator_metrics
from tests.e2e.chart import (
    ALERTS,
    MONITORING_KINDS,
    PROMETHEUS_OPERATOR,
    RELEASE,
    SCENARIOS,
    kinds,
    of_kind,
    one,
    render,
)
from tests.e2e.helm import CHART, ROOT, Helm

pytestmark = pytest.mark.e2e

ALERTS_TEST = Path(__file__).with_name("alerts_test.yaml")
DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
DRIFT_JOB = ROOT / "src" / "clinops" / "streaming" / "flink" / "drift_job.py"
# Flink's Prometheus reporter names a user metric of an operator by its scope and groups; a key-value group
# (add_group("feature", name)) contributes its key to the name and its value as a label.
FLINK_OPERATOR_SCOPE = "flink_taskmanager_job_task_operator"
# Gauges the concept-drift path of the drift job is to export and does not yet: only the AUROC alert reads them.
PLANNED = {f"{FLINK_OPERATOR_SCOPE}_drift_concept_auroc_ppm", f"{FLINK_OPERATOR_SCOPE}_drift_concept_outcomes"}
# Flink's own metrics the alerts and dashboards read, by the scope the reporter prefixes them with.
FLINK_SYSTEM = {"flink_jobmanager_numRunningJobs": "numRunningJobs", "flink_jobmanager_job_numRestarts": "numRestarts"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def promtool() -> Path:
    """Debian's promtool, as `make promtool` puts it in the cache."""
    named = os.environ.get("CLINOPS_PROMTOOL")
    found = [Path(named)] if named else sorted(cache_root().glob("promtool-*/promtool"))
    assert found, "no promtool: run `make promtool`"
    assert found[-1].is_file(), f"{found[-1]} is not there: run `make promtool`"
    return found[-1]


def exported(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry's families expose, labelled children or not."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"]}
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names


def drift_job_gauges() -> set[str]:
    """The drift job's gauges, read from its source: ``group.gauge(...)`` and ``feature.gauge(...)``."""
    groups = {"group": "drift", "feature": "drift_feature"}
    names = set()
    for node in ast.walk(ast.parse(DRIFT_JOB.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "gauge"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in groups
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(f"{FLINK_OPERATOR_SCOPE}_{groups[node.func.value.id]}_{node.args[0].value}")
    assert len(names) >= 8, names
    return names


def flink_system_metrics() -> set[str]:
    """Flink's own metric names the chart reads, each checked against Flink's MetricNames in the stream env."""
    jars = sorted((ROOT / ".venv-flink").glob("lib/python*/site-packages/pyflink/lib/flink-dist-*.jar"))
    assert jars, "no flink-dist jar in .venv-flink: run `make stream-env`"
    with zipfile.ZipFile(jars[-1]) as jar:
        constants = jar.read("org/apache/flink/runtime/metrics/MetricNames.class")
    for name, metric in FLINK_SYSTEM.items():
        assert metric.encode() in constants, f"{name}: Flink has no metric {metric}"
    return set(FLINK_SYSTEM)


@pytest.fixture(scope="module")
def known_metrics() -> set[str]:
    names = exported(ServerMetrics().registry) | exported(IngestMetrics().registry)
    return names | exported(operator_metrics.REGISTRY) | drift_job_gauges() | flink_system_metrics()


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label matchers, groupings, strings and ranges removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        if not match[2] and match[1] not in PROMQL_WORDS and not re.fullmatch(r"\d+e\d+|[0-9.]+", match[1]):
            names.add(match[1])
    return names


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_metric_names_are_read_from_promql_as_prometheus_would() -> None:
    expr = 'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{job="x", le!="1"}[5m]))) / 1e6 > on(n) b'
    assert metric_names(expr) == {"a_bucket", "b"}
    assert metric_names('time() - max by (job_name) (c{namespace=~"$namespace"} > 0)') == {"c"}


def test_promtool_accepts_the_rules_and_every_unit_test_passes() -> None:
    checked = subprocess.run([promtool(), "check", "rules", ALERTS], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout
    tested = subprocess.run([promtool(), "test", "rules", ALERTS_TEST], capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts == firing == silent


def test_the_unit_tests_fail_when_an_alert_threshold_moves(tmp_path: Path) -> None:
    # The tests pin the thresholds: loosen the serving latency one and promtool must object.
    moved = ALERTS.read_text().replace("> 0.2\n", "> 0.5\n")
    assert moved != ALERTS.read_text()
    (tmp_path / "charts" / "clinops" / "files").mkdir(parents=True)
    (tmp_path / "charts" / "clinops" / "files" / "alerts.yaml").write_text(moved)
    (tmp_path / "tests" / "e2e").mkdir(parents=True)
    (tmp_path / "tests" / "e2e" / "alerts_test.yaml").write_text(ALERTS_TEST.read_text())
    tested = subprocess.run(
        [promtool(), "test", "rules", tmp_path / "tests" / "e2e" / "alerts_test.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode != 0
    assert "ClinopsServingLatencyHigh" in tested.stdout + tested.stderr


def test_alerts_read_only_metrics_the_code_exports(known_metrics: set[str]) -> None:
    read = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert read - known_metrics == PLANNED
    assert not PLANNED & known_metrics, "the concept gauges exist now: drop them from PLANNED"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboards_are_grafana_json_reading_only_exported_metrics(path: Path, known_metrics: set[str]) -> None:
    board = json.loads(path.read_text())
    assert board["uid"] == f"clinops-{path.stem}"
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace"]
    # label_values(metric, label): the namespaces on offer are those that export the metric.
    anchor = re.fullmatch(r"label_values\((\w+), namespace\)", board["templating"]["list"][1]["definition"])
    assert anchor, board["templating"]["list"][1]["definition"]
    expressions = [anchor[1]]
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'namespace=~"$namespace"' in target["expr"], target["expr"]
            expressions.append(target["expr"])
    read = set().union(*(metric_names(expr) for expr in expressions))
    assert read
    assert read <= known_metrics, read - known_metrics


def test_the_prometheus_rule_is_the_rules_file(helm: Helm) -> None:
    rule = one(render(helm), "PrometheusRule")
    assert rule["metadata"]["name"] == f"{RELEASE}-alerts"
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())


@pytest.mark.parametrize(
    ("setting", "apis", "rendered"),
    [(None, PROMETHEUS_OPERATOR, True), (None, [], False), ("false", PROMETHEUS_OPERATOR, False), ("true", [], True)],
    ids=["auto-with-crds", "auto-without-crds", "false-with-crds", "true-without-crds"],
)
def test_monitors_and_rules_follow_the_presence_rule(
    helm: Helm, setting: str | None, apis: list[str], rendered: bool
) -> None:
    options = [] if setting is None else ["--set", f"monitoring.monitors={setting}"]
    options += [] if setting is None else ["--set", f"monitoring.prometheusRules={setting}"]
    documents = render(helm, *options, apis=apis)
    expected = MONITORING_KINDS if rendered else set()
    assert kinds(documents) & MONITORING_KINDS == expected
    assert ("clinops-operator-metrics" in {s["metadata"]["name"] for s in of_kind(documents, "Service")}) is rendered


def test_only_the_offered_monitoring_kinds_are_rendered(helm: Helm) -> None:
    # A prometheus-operator too old for PodMonitor, say: the ServiceMonitor and the rules still come.
    documents = render(
        helm, apis=["monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"]
    )
    assert kinds(documents) & MONITORING_KINDS == {"ServiceMonitor", "PrometheusRule"}


def test_the_monitors_select_what_the_platform_runs(helm: Helm) -> None:
    documents = render(helm, "--set", "monitoring.labels.release=kube-prometheus-stack")
    operator = one(documents, "ServiceMonitor", "clinops-operator")
    service = one(documents, "Service", "clinops-operator-metrics")
    deployment = one(documents, "Deployment", "clinops-operator")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert "--metrics-port=9100" in container["args"]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert operator["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert operator["spec"]["endpoints"][0]["port"] == "metrics"
    flink = one(documents, "PodMonitor", "clinops-flink")
    assert flink["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "clinops-drift"
    assert flink["spec"]["podMetricsEndpoints"][0]["portNumber"] == 9249
    assert one(documents, "PodMonitor", "clinops-ingest")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    for monitor in [*of_kind(documents, "ServiceMonitor"), *of_kind(documents, "PodMonitor")]:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert one(documents, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # MLflow serves /metrics because the chart starts it so, on the port its monitor names.
    mlflow = one(documents, "ServiceMonitor", "clinops-mlflow")
    assert mlflow["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "mlflow",
        "app.kubernetes.io/instance": RELEASE,
    }
    server = one(documents, "Deployment", "clinops-mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert any(arg.startswith("--expose-prometheus=") for arg in [*server.get("command", []), *server.get("args", [])])
    assert mlflow["spec"]["endpoints"][0]["port"] in {port["name"] for port in server["ports"]}
    # Without it, neither the flag nor the monitor.
    quiet = render(helm, "--set", "monitoring.mlflow=false")
    assert "clinops-mlflow" not in {m["metadata"]["name"] for m in of_kind(quiet, "ServiceMonitor")}
    quiet_server = one(quiet, "Deployment", "clinops-mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert not any(
        "--expose-prometheus" in arg for arg in [*quiet_server.get("command", []), *quiet_server.get("args", [])]
    )


def test_dashboards_are_configmaps_for_the_grafana_sidecar(helm: Helm) -> None:
    documents = render(helm, apis=[])
    maps = {m["metadata"]["name"]: m for m in of_kind(documents, "ConfigMap") if "-dashboard-" in m["metadata"]["name"]}
    assert set(maps) == {f"{RELEASE}-dashboard-{path.stem}" for path in DASHBOARDS}
    for path in DASHBOARDS:
        dashboard = maps[f"{RELEASE}-dashboard-{path.stem}"]
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert dashboard["metadata"]["annotations"]["grafana_folder"] == "clinops"
        assert json.loads(dashboard["data"][path.name]) == json.loads(path.read_text())
    relabelled = render(helm, "--set", "monitoring.dashboards.label=team_dashboards", apis=[])
    dashboards = [m for m in of_kind(relabelled, "ConfigMap") if "-dashboard-" in m["metadata"]["name"]]
    assert len(dashboards) == len(DASHBOARDS)
    assert all("team_dashboards" in m["metadata"]["labels"] for m in dashboards)
    off = render(helm, "--set", "monitoring.dashboards.enabled=false", apis=[])
    assert not [m for m in of_kind(off, "ConfigMap") if "-dashboard-" in m["metadata"]["name"]]


def test_the_in_namespace_stack_scrapes_the_namespace_and_loads_the_same_alerts_and_dashboards(helm: Helm) -> None:
    documents = render(helm, values=SCENARIOS / "no-prometheus-operator.yaml", namespace="ml")
    settings = one(documents, "ConfigMap", f"{RELEASE}-prometheus")["data"]
    scrape = yaml.safe_load(settings["prometheus.yml"])
    assert scrape["rule_files"] == ["alerts.yaml"]
    assert yaml.safe_load(settings["alerts.yaml"]) == yaml.safe_load(ALERTS.read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert set(jobs) == {"clinops-operator", "clinops-ingest", "clinops-model-server", "clinops-flink", "mlflow"}
    for job in jobs.values():
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["ml"]}}]
        assert {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"} in job["relabel_configs"]
    assert jobs["clinops-flink"]["relabel_configs"][1]["replacement"] == "$1:9249"
    role = one(documents, "Role", f"{RELEASE}-prometheus")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert not of_kind(documents, "ClusterRole")
    grafana = one(documents, "Deployment", f"{RELEASE}-grafana")["spec"]["template"]["spec"]
    sources = next(v for v in grafana["volumes"] if v["name"] == "dashboards")["projected"]["sources"]
    assert {s["configMap"]["name"] for s in sources} == {f"{RELEASE}-dashboard-{path.stem}" for path in DASHBOARDS}
    provisioning = one(documents, "ConfigMap", f"{RELEASE}-grafana-provisioning")["data"]
    (datasource,) = yaml.safe_load(provisioning["datasources.yaml"])["datasources"]
    assert datasource["url"] == f"http://{RELEASE}-prometheus:9090"
    for name in (f"{RELEASE}-prometheus", f"{RELEASE}-grafana"):
        pod = one(documents, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]["memory"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_grafana_gets_a_generated_password_or_the_given_secret(helm: Helm) -> None:
    generated = render(helm, "--set", "monitoring.stack.enabled=true", apis=[])
    secret = one(generated, "Secret", f"{RELEASE}-grafana")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(secret["data"]["admin-password"]) >= 40  # 32 random characters, base64
    again = one(render(helm, "--set", "monitoring.stack.enabled=true", apis=[]), "Secret", f"{RELEASE}-grafana")
    assert again["data"]["admin-password"] != secret["data"]["admin-password"]  # random, not a default
    given = render(
        helm, "--set", "monitoring.stack.enabled=true", "--set", "monitoring.stack.grafana.existingSecret=ops", apis=[]
    )
    assert not [s for s in of_kind(given, "Secret") if s["metadata"]["name"] == f"{RELEASE}-grafana"]
    (container,) = one(given, "Deployment", f"{RELEASE}-grafana")["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"GF_SECURITY_ADMIN_USER": "ops", "GF_SECURITY_ADMIN_PASSWORD": "ops"}


def test_without_the_stack_there_is_no_prometheus_or_grafana(helm: Helm) -> None:
    # By the components' own labels: other objects (a NetworkPolicy admitting Prometheus, say) may name them.
    components = {d["metadata"].get("labels", {}).get("app.kubernetes.io/name") for d in render(helm)}
    assert not components & {"prometheus", "grafana"}
