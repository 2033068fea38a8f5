from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from clinops.errors import ClinopsError
from clinops.monitoring.drift import CATEGORICAL_TESTS, NUMERICAL_TESTS
from clinops.specs.common import load_resource, parse_resource
from clinops.specs.drift_monitor import (
    CategoricalTest,
    DriftMonitor,
    DriftMonitorStatus,
    NumericalTest,
    duration_seconds,
)
from clinops.streaming.flink.drift_sql import add_drift_parser, drift_options
from clinops.streaming.flink.silver_sql import SourceKind

SAMPLE = Path(__file__).parents[2] / "manifests" / "samples" / "drift-monitor.yaml"


def monitor(**spec) -> dict:
    return {
        "apiVersion": "clinops.io/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "m"},
        "spec": {"deployment": "readmission-risk", **spec},
    }


def drift_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser()
    add_drift_parser(root.add_subparsers(dest="job"))
    return root


def test_sample_is_valid_and_camel_case() -> None:
    loaded = load_resource(DriftMonitor, SAMPLE)
    spec = loaded.spec
    assert spec.deployment == "readmission-risk"
    assert spec.persistence == 3
    assert spec.action.retrain is not None
    assert spec.action.retrain.training_job_ref is not None
    assert spec.action.retrain.cooldown_seconds == 6 * 3600
    dumped = loaded.model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["window"]["latenessSeconds"] == 300
    assert dumped["spec"]["flink"]["checkpointDir"] == "s3://clinops-flink/checkpoints"


def test_defaults_match_the_drift_job() -> None:
    spec = parse_resource(DriftMonitor, monitor()).spec
    args = drift_parser().parse_args(["drift", "--profile=p.json", "--deployment=d", "--lake=/l"])
    assert spec.window.seconds == args.window_seconds
    assert spec.window.lateness_seconds == args.lateness
    assert spec.statistics.numerical.test == args.numerical_test
    assert spec.statistics.categorical.test == args.categorical_test
    assert spec.statistics.drift_share == args.drift_share
    assert spec.statistics.threshold == args.threshold
    assert spec.flink.parallelism == args.parallelism
    assert spec.flink.checkpoint_interval_seconds == args.checkpoint_interval
    assert spec.source.topic == args.topic
    assert spec.source.results_topic == args.results_topic
    assert spec.action.retrain is None


def test_tests_are_the_drift_statistics() -> None:
    assert tuple(NumericalTest) == NUMERICAL_TESTS
    assert tuple(CategoricalTest) == CATEGORICAL_TESTS


@pytest.mark.parametrize(
    ("spec", "lake", "bootstrap", "expected"),
    [
        ({}, None, "127.0.0.1:9092", {"source": SourceKind.KAFKA, "threshold": None, "features": None}),
        (
            {
                "source": {"kind": "lake", "topic": "preds", "resultsTopic": "drift"},
                "window": {"seconds": 60, "latenessSeconds": 0},
                "statistics": {
                    "numerical": {"test": "psi", "threshold": 0.2},
                    "categorical": {"test": "jsd", "threshold": 0.2},
                    "driftShare": 0.25,
                    "features": ["age", "heart rate"],
                },
                "flink": {
                    "parallelism": 4,
                    "checkpointIntervalSeconds": 2.5,
                    "config": {"taskmanager.numberOfTaskSlots": "2"},
                },
            },
            "s3://clinops-lake",
            None,
            {
                "source": SourceKind.FILES,
                "topic": "preds",
                "results_topic": "drift",
                "window_seconds": 60,
                "lateness_s": 0,
                "numerical_test": "psi",
                "categorical_test": "jsd",
                "threshold": 0.2,
                "drift_share": 0.25,
                "features": ("age", "heart rate"),
                "parallelism": 4,
                "checkpoint_interval_s": 2.5,
                "extra_config": {"taskmanager.numberOfTaskSlots": "2"},
            },
        ),
    ],
)
def test_job_arguments_parse_to_the_spec(spec, lake, bootstrap, expected) -> None:
    parsed = parse_resource(DriftMonitor, monitor(**spec)).spec
    arguments = parsed.job_arguments(profile="s3://p.json", lake=lake, bootstrap=bootstrap)
    options = drift_options(drift_parser().parse_args(arguments))
    assert options.deployment == "readmission-risk"
    assert options.profile == "s3://p.json"
    for name, value in expected.items():
        assert getattr(options, name) == value, name


def test_template_retrain_carries_a_training_job_spec() -> None:
    template = {"model": {"name": "m"}, "dataset": {"uri": "lake://gold/encounters/", "target": "y"}}
    spec = parse_resource(DriftMonitor, monitor(action={"retrain": {"template": template, "cooldown": "1h30m"}})).spec
    assert spec.action.retrain is not None
    assert spec.action.retrain.template is not None
    assert spec.action.retrain.template.dataset.target == "y"
    assert spec.action.retrain.cooldown_seconds == 5400


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"deployment": "Not_A_Name"}, "spec.deployment"),
        ({"source": {"kind": "s3"}}, "spec.source.kind"),
        ({"window": {"seconds": 0}}, "spec.window.seconds"),
        ({"window": {"seconds": 100 * 86400}}, "spec.window.seconds"),
        ({"statistics": {"numerical": {"test": "chi2"}}}, "spec.statistics.numerical.test"),
        ({"statistics": {"categorical": {"test": "wasserstein"}}}, "spec.statistics.categorical.test"),
        ({"statistics": {"driftShare": 0}}, "spec.statistics.driftShare"),
        ({"statistics": {"numerical": {"threshold": 0.1}}}, "one threshold"),
        (
            {"statistics": {"numerical": {"threshold": 0.1}, "categorical": {"threshold": 0.2}}},
            "one threshold",
        ),
        ({"statistics": {"features": ["a,b"]}}, "spec.statistics.features.0"),
        ({"persistence": 0}, "spec.persistence"),
        ({"action": {"retrain": {"cooldown": "6h"}}}, "exactly one of trainingJobRef or template"),
        (
            {"action": {"retrain": {"trainingJobRef": {"name": "a"}, "template": {}}}},
            "spec.action.retrain.template",
        ),
        ({"action": {"retrain": {"trainingJobRef": {"name": "a"}, "cooldown": "six hours"}}}, "cooldown"),
        ({"flink": {"parallelism": 0}}, "spec.flink.parallelism"),
        ({"flink": {"checkpointDir": "/tmp/x"}}, "spec.flink.checkpointDir"),
        ({"flink": {"image": "x" * 1_000_000}}, "spec.flink.image"),
        ({"windw": {"seconds": 5}}, "windw"),
    ],
)
def test_invalid_specs_name_the_field(spec, message) -> None:
    with pytest.raises(ClinopsError, match=message):
        parse_resource(DriftMonitor, monitor(**spec))


def test_duration_seconds() -> None:
    assert duration_seconds("2d") == 172800
    assert duration_seconds("1h30m15s") == 5415
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("1.5h")


def test_status_round_trips() -> None:
    status = {
        "phase": "Drifted",
        "flinkJob": "m-drift",
        "lastWindow": {
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T00:10:00Z",
            "rows": 5000,
            "driftShare": 0.6,
            "drifted": True,
            "driftedFeatures": ["age"],
        },
        "driftedWindows": 3,
        "lastRetraining": {"name": "m-retrain-1", "startedAt": "2026-01-01T00:10:05Z"},
        "retrainings": 1,
        "conditions": [
            {
                "type": "Drifted",
                "status": "True",
                "reason": "PersistentDrift",
                "lastTransitionTime": "2026-01-01T00:10:00Z",
            }
        ],
        "observedGeneration": 2,
    }
    parsed = DriftMonitorStatus.model_validate(status)
    assert parsed.model_dump(by_alias=True, exclude_none=True)["lastWindow"]["driftedFeatures"] == ["age"]
    assert parse_resource(DriftMonitor, {**monitor(), "status": status}).status == parsed
