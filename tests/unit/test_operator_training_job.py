"""The TrainingJob builders: KFP names, the compiled pipeline's parameters, recurring runs and status transitions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clinops.specs.training_job import TrainingJobSpec
from clinops_operator.builders import training_job as build
from clinops_operator.builders.common import InvalidSpecError, parse_spec

pytestmark = pytest.mark.unit

SPEC = {"model": {"name": "readmission-risk"}, "dataset": {"uri": "lake://gold/encounters/", "target": "readmitted"}}
UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000000"
NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def spec(**overrides: Any) -> TrainingJobSpec:
    return parse_spec(TrainingJobSpec, {**SPEC, **overrides})


def test_names_are_deterministic_per_namespace_object_and_generation() -> None:
    first = build.run_name(namespace="icu", name="weekly", uid=UID, generation=1)
    assert first == "icu-weekly-0f1e2d3c-g1"
    assert build.run_name(namespace="icu", name="weekly", uid=UID, generation=1) == first
    assert build.run_name(namespace="icu", name="weekly", uid=UID, generation=2) != first
    # A TrainingJob recreated under the same name gets a new uid, so never the old object's run.
    assert build.run_name(namespace="icu", name="weekly", uid="99" + UID[2:], generation=1) != first
    assert build.experiment_name(namespace="icu") == "clinops-icu"


def test_the_compiled_pipeline_carries_the_specs_parameters() -> None:
    wanted = spec(algorithms=["xgboost", "random_forest"])
    parameters = build.parameters(name="weekly", spec=wanted, tracking_uri="http://mlflow:5000", lake_root="s3://lake")
    assert TrainingJobSpec.model_validate_json(parameters["spec_json"]) == wanted
    compiled = build.compiled_pipeline(parameters=parameters)
    assert compiled["pipelineInfo"]["name"] == "clinops-training"
    defaults = {key: value["defaultValue"] for key, value in compiled["root"]["inputDefinitions"]["parameters"].items()}
    assert defaults == parameters
    assert json.loads(defaults["spec_json"])["algorithms"] == ["xgboost", "random_forest"]


@pytest.mark.parametrize(
    ("schedule", "cron"), [(None, None), ("0 3 * * 0", "0 0 3 * * 0"), ("*/15 * * * *", "0 */15 * * * *")]
)
def test_a_schedule_becomes_a_recurring_run_with_kfp_cron(schedule: str | None, cron: str | None) -> None:
    wanted = spec(schedule=schedule)
    parameters = build.parameters(name="weekly", spec=wanted, tracking_uri="http://m", lake_root="/lake")
    recurring = build.recurring_run(
        namespace="icu", name="weekly", uid=UID, generation=3, spec=wanted, parameters=parameters
    )
    if cron is None:
        assert recurring is None
        return
    assert recurring is not None
    assert (recurring.display_name, recurring.description) == ("icu-weekly-0f1e2d3c-schedule", "generation 3")
    assert recurring.cron == cron
    assert recurring.parameters == parameters


@pytest.mark.parametrize(
    ("state", "phase", "succeeded", "failed"),
    [
        (None, "Pending", "Unknown", "False"),
        ("PENDING", "Pending", "Unknown", "False"),
        ("RUNNING", "Running", "Unknown", "False"),
        ("CANCELING", "Running", "Unknown", "False"),
        ("SUCCEEDED", "Succeeded", "True", "False"),
        ("FAILED", "Failed", "False", "True"),
        ("CANCELED", "Failed", "False", "True"),
    ],
)
def test_status_follows_the_runs_state(state: str | None, phase: str, succeeded: str, failed: str) -> None:
    status = build.status(state=state, run_id="r1", generation=2, outcome=None, previous_conditions=[], now=NOW)
    assert (status["phase"], status["runId"], status["observedGeneration"]) == (phase, "r1", 2)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Succeeded"]["status"], conditions["Failed"]["status"]) == (succeeded, failed)
    assert all(c["observedGeneration"] == 2 for c in conditions.values())


def test_a_transition_moves_only_the_conditions_that_changed() -> None:
    running = build.status(state="RUNNING", run_id="r1", generation=1, outcome=None, previous_conditions=[], now=NOW)
    outcome = build.Outcome(mlflow_run_id="m1", model_version="4", promoted=True)
    done = build.status(
        state="SUCCEEDED",
        run_id="r1",
        generation=1,
        outcome=outcome,
        previous_conditions=running["conditions"],
        now=LATER,
    )
    conditions = {c["type"]: c for c in done["conditions"]}
    assert conditions["Succeeded"]["lastTransitionTime"] == LATER
    assert conditions["Failed"]["lastTransitionTime"] == NOW
    assert (done["mlflowRunId"], done["modelVersion"], done["promoted"]) == ("m1", "4", True)


def test_an_invalid_spec_fails_naming_the_field() -> None:
    with pytest.raises(InvalidSpecError, match=r"spec\.schedule") as raised:
        spec(schedule="weekly")
    status = build.failed_status(problem=str(raised.value), generation=1, previous_conditions=[], now=NOW)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Failed"
    assert (conditions["Failed"]["status"], conditions["Failed"]["reason"]) == ("True", "InvalidSpec")
    assert conditions["Failed"]["message"].startswith("spec.schedule")
