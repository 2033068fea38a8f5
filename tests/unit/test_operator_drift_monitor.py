"""DriftMonitor builders: the drift job's arguments and state directories, windows into status, retraining."""

from __future__ import annotations

from typing import Any

import pytest

from clinops.monitoring.reference import Reference
from clinops.specs.drift_monitor import DriftMonitorSpec
from clinops_operator import drift_results
from clinops_operator.builders import drift_monitor as build
from clinops_operator.builders.common import parse_spec

pytestmark = pytest.mark.unit

CONFIG = build.DriftConfig(
    image="clinops-platform:test", flink_version="v2_3", jar_uri="local:///opt/flink/opt/flink-python.jar"
)
REFERENCE = Reference(
    model="sepsis", version="4", features=("heart_rate", "age"), profile={"rows": 10, "features": {"age": {}}}
)
HOUR = 3600.0


def spec(**fields: Any) -> DriftMonitorSpec:
    return parse_spec(DriftMonitorSpec, {"deployment": "sepsis", **fields})


def record(hour: int, drifted: bool) -> dict[str, Any]:
    return {"window_end": f"2026-03-01T{hour:02d}:10:00Z", "drift_share": 0.6 if drifted else 0.1, "drifted": drifted}


def test_the_job_reads_the_mounted_profile_of_the_pinned_version_with_its_own_group() -> None:
    config = build.DriftConfig(**{**CONFIG.__dict__, "kafka_bootstrap": "kafka:9092"})
    job = build.flink_deployment(name="watch", namespace="icu", spec=spec(), config=config, reference=REFERENCE)
    arguments = job["spec"]["job"]["args"]
    assert arguments[:3] == ["-pym", "clinops.streaming.flink", "drift"]
    assert "--profile=/opt/clinops/profile/profile.json" in arguments
    assert {"--model=sepsis", "--model-version=4", "--group-id=clinops-drift-icu-watch"} <= set(arguments)
    assert "--features=heart_rate,age" in arguments
    configuration = job["spec"]["flinkConfiguration"]
    # Flink 2.x spells the state directories differently from 1.x.
    assert configuration["execution.checkpointing.dir"] == "s3://clinops-flink/checkpoints/icu/watch"
    assert "state.checkpoints.dir" not in configuration
    # The driver and its Python workers run the image's stream env, not whatever `python` PATH finds first.
    assert configuration["python.client.executable"] == configuration["python.executable"] == CONFIG.python
    assert configuration["metrics.reporter.prom.port"] == "9249"
    assert configuration["metrics.reporter.prom.factory.class"].endswith(".PrometheusReporterFactory")
    quiet = build.DriftConfig(**{**config.__dict__, "metrics_port": None})
    quiet_job = build.flink_deployment(name="watch", namespace="icu", spec=spec(), config=quiet, reference=REFERENCE)
    assert not any(key.startswith("metrics.reporter") for key in quiet_job["spec"]["flinkConfiguration"])
    assert job["metadata"]["annotations"][build.PROFILE_DIGEST] == build.digest(REFERENCE)


def test_spec_features_and_flink_config_win_over_the_defaults() -> None:
    config = build.DriftConfig(**{**CONFIG.__dict__, "flink_version": "v1_20", "lake": "s3://lake"})
    chosen = spec(
        source={"kind": "lake"},
        statistics={"features": ["age"]},
        flink={"config": {"state.checkpoints.dir": "file:///x"}, "checkpointDir": "s3://mine"},
    )
    job = build.flink_deployment(name="watch", namespace="icu", spec=chosen, config=config, reference=REFERENCE)
    arguments = job["spec"]["job"]["args"]
    assert "--features=age" in arguments
    assert "--lake=s3://lake" in arguments
    assert not any(argument.startswith("--features=heart_rate") for argument in arguments)
    assert job["spec"]["flinkConfiguration"]["state.checkpoints.dir"] == "file:///x"


@pytest.mark.parametrize(
    ("source", "message"),
    [("kafka", "CLINOPS_KAFKA_BOOTSTRAP"), ("lake", "CLINOPS_LAKE")],
)
def test_a_source_the_operator_cannot_reach_is_a_settings_error(source: str, message: str) -> None:
    with pytest.raises(build.SettingsError, match=message):
        build.flink_deployment(
            name="watch", namespace="icu", spec=spec(source={"kind": source}), config=CONFIG, reference=REFERENCE
        )


def test_a_profile_too_large_for_a_config_map_says_what_to_do() -> None:
    huge = Reference(model="m", version="1", features=("x",), profile={"features": {"x": {"bins": "y" * 1_100_000}}})
    with pytest.raises(build.SettingsError, match=r"statistics\.features"):
        build.profile_config_map(name="watch", namespace="icu", reference=huge)


def test_windows_count_once_and_a_stable_window_ends_the_run() -> None:
    window, run = build.advance(None, 0, [record(2, True), record(1, True)])
    assert (window["end"], run) == ("2026-03-01T02:10:00Z", 2)
    # A replay after a restart, and a late window, change nothing.
    assert build.advance(window, run, [record(1, False), record(2, True)]) == (window, 2)
    window, run = build.advance(window, run, [record(3, False)])
    assert (window["drifted"], run) == (False, 0)


def test_retraining_waits_for_persistence_a_running_job_and_the_cooldown() -> None:
    chosen = spec(persistence=2, action={"retrain": {"trainingJobRef": {"name": "weekly"}, "cooldown": "6h"}})
    last = {"name": "watch-retrain-1"}

    def decide(drifted: int, *, active: bool = False, started: float | None = None) -> str:
        decision = build.retrain_decision(
            spec=chosen,
            drifted_windows=drifted,
            last_retraining=last if started is not None else None,
            active=active,
            now=10 * HOUR,
            started_at=started,
        )
        return decision.reason if not decision.due else "due"

    assert decide(1) == "NoPersistentDrift"
    assert decide(2) == "due"
    assert decide(3, active=True, started=0.0) == "RetrainingActive"
    assert decide(3, started=5 * HOUR) == "Cooldown"
    assert decide(3, started=3 * HOUR) == "due"
    assert (
        build.retrain_decision(
            spec=spec(persistence=1), drifted_windows=1, last_retraining=None, active=False, now=0.0, started_at=None
        ).reason
        == "NoRetrainAction"
    )


def test_a_retraining_runs_once_under_a_deterministic_name() -> None:
    job = build.retraining_job(
        name="watch",
        namespace="icu",
        number=3,
        training_spec={"model": {"name": "m"}, "schedule": "0 3 * * 1"},
        window_end="2026-03-01T02:10:00Z",
    )
    assert job["metadata"]["name"] == "watch-retrain-3"
    assert job["spec"] == {"model": {"name": "m"}}
    assert job["metadata"]["labels"][build.MONITOR_LABEL] == "watch"
    assert build.training_active(None) is False
    assert build.training_active({"status": {"phase": "Running"}}) is True
    assert build.training_active({"status": {"phase": "Succeeded"}}) is False


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"window_end": null}', None, b"\xff\xfe"])
def test_a_result_that_is_not_a_drift_record_is_skipped(raw: bytes | None) -> None:
    assert drift_results.parse(raw) is None


def test_status_phases_follow_the_job_the_windows_and_the_retraining() -> None:
    def phase(**fields: Any) -> str:
        arguments = {
            "job_state": None,
            "last_window": None,
            "drifted_windows": 0,
            "persistence": 2,
            "retraining": False,
        }
        return build.phase(**{**arguments, **fields}).value

    window = {"end": "x", "drifted": True, "driftShare": 0.6}
    assert phase() == "Pending"
    assert phase(job_state="RUNNING") == "Running"
    assert phase(last_window=window, drifted_windows=1) == "Running"
    assert phase(last_window=window, drifted_windows=2) == "Drifted"
    assert phase(last_window=window, drifted_windows=2, retraining=True) == "Retraining"
