"""The operator's Prometheus metrics: every reconcile counted by kind and outcome, errors by class, served on a port."""

from __future__ import annotations

import httpx
import kopf
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clinops.stack.process import free_port
from clinops_operator import metrics
from clinops_operator.__main__ import main
from clinops_operator.handlers import drift_monitor, model_deployment, training_job

pytestmark = pytest.mark.unit


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (kopf.TemporaryError("the model is not registered yet", delay=5), "temporary"),
        (kopf.PermanentError("Rejected the spec: spec.replicas"), "permanent"),
        (RuntimeError("the apiserver went away"), "unexpected"),
    ],
)
def test_a_raising_reconcile_counts_as_an_error_of_its_class_and_still_raises(raised: Exception, error: str) -> None:
    kind = f"Test{error.title()}"

    @metrics.reconciled(kind)
    def reconcile(**_: object) -> None:
        raise raised

    with pytest.raises(type(raised)):
        reconcile(name="x")
    assert sample("clinops_operator_reconciles_total", kind=kind, outcome="error") == 1
    assert sample("clinops_operator_reconcile_errors_total", kind=kind, error=error) == 1
    assert sample("clinops_operator_reconciles_total", kind=kind, outcome="success") == 0


def test_a_returning_reconcile_counts_as_a_success_and_keeps_its_result() -> None:
    @metrics.reconciled("TestSuccess")
    def reconcile(*, name: str) -> str:
        return f"reconciled {name}"

    assert reconcile(name="a") == "reconciled a"
    assert reconcile(name="b") == "reconciled b"
    assert sample("clinops_operator_reconciles_total", kind="TestSuccess", outcome="success") == 2
    assert sample("clinops_operator_reconcile_errors_total", kind="TestSuccess", error="unexpected") == 0


def test_every_kinds_reconcile_handler_is_counted_under_its_kind() -> None:
    for module in (training_job, model_deployment, drift_monitor):
        # functools.wraps leaves the undecorated handler on __wrapped__: only a counted handler has one.
        assert module.reconcile.__wrapped__.__name__ == "reconcile"
        assert module.reconcile.__module__ == module.__name__


def test_the_endpoint_serves_both_families_in_the_exposition_format() -> None:
    @metrics.reconciled("TestServed")
    def reconcile() -> None:
        raise kopf.TemporaryError("later", delay=1)

    with pytest.raises(kopf.TemporaryError):
        reconcile()
    port = free_port()
    server = metrics.serve(port, "127.0.0.1")
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["clinops_operator_reconciles"].type == "counter"
    errors = [s for s in families["clinops_operator_reconcile_errors"].samples if s.name.endswith("_total")]
    assert {"kind": "TestServed", "error": "temporary"} in [s.labels for s in errors]


def test_a_metrics_port_out_of_range_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--metrics-port", "70000"])
    assert exited.value.code == 2
    assert "--metrics-port must be 0..65535, not 70000" in capsys.readouterr().err
