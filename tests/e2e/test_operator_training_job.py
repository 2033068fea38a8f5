"""The operator on the real control plane: a TrainingJob becomes one KFP run per generation, followed into status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from clinops.specs.training_job import TrainingJobSpec
from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from clinops.stack.process import ManagedProcess
from tests.e2e import operator_process
from tests.e2e.kfp_fake import KfpFake

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CRD = ROOT / "manifests" / "crds" / "clinops.io_trainingjobs.yaml"
SAMPLE = ROOT / "manifests" / "samples" / "training-job.yaml"
GROUP, VERSION, PLURAL = "clinops.io", "v1alpha1", "trainingjobs"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane, api: client.ApiClient) -> Iterator[str]:
    crds.install(control_plane, [CRD])
    name = f"training-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def running_operator(
    plane: ControlPlane, namespace: str, kfp: KfpFake, *, tracking_uri: str | None = None
) -> AbstractContextManager[ManagedProcess]:
    """The operator watching the test namespace and submitting to the KFP fake; its runs share one log."""
    env = {
        "CLINOPS_KFP_ENDPOINT": kfp.url,
        "CLINOPS_TRAINING_POLL_SECONDS": "0.5",
        # No tracking server: the operator must not wait for one to tell it the outcome.
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    return operator_process.running_operator(plane.kubeconfig, namespace, plane.logs / f"operator-{namespace}.log", env)


class Jobs:
    """The test's view of the TrainingJobs of one namespace and of the runs the fake KFP holds for them."""

    def __init__(self, plane: ControlPlane, api: client.ApiClient, namespace: str, kfp: KfpFake) -> None:
        self.plane = plane
        self.namespace = namespace
        self.kfp = kfp
        self.custom = client.CustomObjectsApi(api)

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        body = yaml.safe_load(SAMPLE.read_text())
        body["metadata"]["name"] = name
        body["spec"].update(spec)
        return dict(self._objects("create", body))

    def _objects(self, verb: str, *args: Any) -> Any:
        call = getattr(self.custom, f"{verb}_namespaced_custom_object")
        return call(GROUP, VERSION, self.namespace, PLURAL, *args)

    def get(self, name: str) -> dict[str, Any]:
        return dict(self._objects("get", name))

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return dict(self._objects("patch", name, {"spec": spec}))

    def delete(self, name: str) -> None:
        self._objects("delete", name)

    def gone(self, name: str) -> bool:
        try:
            self.get(name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    def wait(self, ready: Callable[[], bool], what: str) -> None:
        self.plane.wait_for(ready, what, TIMEOUT_S)

    def wait_status(self, name: str, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The status once ``check`` holds for it."""
        statuses: list[dict[str, Any]] = []

        def holds() -> bool:
            statuses.append(self.get(name).get("status") or {})
            return check(statuses[-1])

        self.wait(holds, f"{name}: {what}")
        return statuses[-1]

    def run_name(self, body: dict[str, Any]) -> str:
        metadata = body["metadata"]
        return f"{self.namespace}-{metadata['name']}-{metadata['uid'][:8]}-g{metadata['generation']}"

    def submitted(self, body: dict[str, Any]) -> dict[str, Any]:
        """The one run submitted for this object's generation, and the status pointing at it."""
        status = self.wait_status(
            body["metadata"]["name"],
            lambda s: bool(s.get("runId")) and s.get("observedGeneration") == body["metadata"]["generation"],
            f"a run for generation {body['metadata']['generation']}",
        )
        (run,) = self.kfp.runs_named(self.run_name(body))
        assert run["run_id"] == status["runId"]
        return run


@pytest.fixture
def jobs(control_plane: ControlPlane, api: client.ApiClient, namespace: str, kfp_api: KfpFake) -> Jobs:
    return Jobs(control_plane, api, namespace, kfp_api)


def _phase(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status.get("phase") == phase


def test_the_sample_becomes_one_run_followed_to_success(jobs: Jobs) -> None:
    with running_operator(jobs.plane, jobs.namespace, jobs.kfp):
        created = jobs.create("readmission-weekly")
        run = jobs.submitted(created)

        name = jobs.run_name(created)
        assert run["experiment_id"] in {e["experiment_id"] for e in jobs.kfp.experiments.values()}
        assert jobs.kfp.experiments[run["experiment_id"]]["display_name"] == f"clinops-{jobs.namespace}"
        parameters = jobs.kfp.parameters(run["run_id"])
        assert parameters["job_name"] == name
        assert parameters["lake_root"] == "s3://clinops-lake"
        sample = yaml.safe_load(SAMPLE.read_text())["spec"]
        assert TrainingJobSpec.model_validate_json(parameters["spec_json"]) == TrainingJobSpec.model_validate(sample)
        compiled = run["pipeline_spec"]
        assert compiled["pipelineInfo"]["name"] == "clinops-training"
        defaults = compiled["root"]["inputDefinitions"]["parameters"]
        assert json.loads(defaults["spec_json"]["defaultValue"])["algorithms"] == sample["algorithms"]

        jobs.kfp.set_state(run["run_id"], "RUNNING")
        jobs.wait_status("readmission-weekly", _phase("Running"), "Running")
        jobs.kfp.set_state(run["run_id"], "SUCCEEDED")
        status = jobs.wait_status("readmission-weekly", _phase("Succeeded"), "Succeeded")
        conditions = {c["type"]: c for c in status["conditions"]}
        assert (conditions["Succeeded"]["status"], conditions["Failed"]["status"]) == ("True", "False")
        assert status["observedGeneration"] == created["metadata"]["generation"]
        assert len(jobs.kfp.runs_named(name)) == 1
        jobs.delete("readmission-weekly")
        jobs.wait(lambda: jobs.gone("readmission-weekly"), "the TrainingJob deleted")
        # A finished run has nothing to cancel.
        assert run["run_id"] not in jobs.kfp.terminated


def test_a_spec_change_starts_one_new_run_and_a_restart_none(jobs: Jobs) -> None:
    name = "sepsis-daily"
    with running_operator(jobs.plane, jobs.namespace, jobs.kfp):
        created = jobs.create(name)
        first = jobs.submitted(created)
        patched = jobs.patch(name, {"tuning": {"trials": 30}})
        assert patched["metadata"]["generation"] == created["metadata"]["generation"] + 1
        second = jobs.submitted(patched)
        assert second["run_id"] != first["run_id"]
        assert json.loads(jobs.kfp.parameters(second["run_id"])["spec_json"])["tuning"]["trials"] == 30

    looked_up = len(jobs.kfp.requests)
    second_name = jobs.run_name(patched)

    def looked_for_the_run() -> bool:
        return any(
            method == "GET" and path.endswith("/runs") and second_name in query.get("filter", "")
            for method, path, query in jobs.kfp.requests[looked_up:]
        )

    with running_operator(jobs.plane, jobs.namespace, jobs.kfp):
        # Resuming looks the generation's run up by name, and finds it.
        jobs.wait(looked_for_the_run, "the restarted operator looking for the run")
        jobs.kfp.set_state(second["run_id"], "FAILED")
        status = jobs.wait_status(name, _phase("Failed"), "Failed")
        assert status["runId"] == second["run_id"]
        assert len(jobs.kfp.runs_named(jobs.run_name(created))) == 1
        assert len(jobs.kfp.runs_named(second_name)) == 1
        jobs.delete(name)
        jobs.wait(lambda: jobs.gone(name), "the TrainingJob deleted")


def test_deleting_a_running_job_terminates_its_run(jobs: Jobs) -> None:
    name = "los-hourly"
    with running_operator(jobs.plane, jobs.namespace, jobs.kfp):
        created = jobs.create(name)
        run = jobs.submitted(created)
        jobs.kfp.set_state(run["run_id"], "RUNNING")
        jobs.wait_status(name, _phase("Running"), "Running")
        assert jobs.get(name)["metadata"].get("finalizers")

        jobs.delete(name)
        # Gone means the finalizer came off: the operator cancelled the run outside the cluster first.
        jobs.wait(lambda: jobs.gone(name), "the TrainingJob deleted")
        assert run["run_id"] in jobs.kfp.terminated
        assert jobs.kfp.runs[run["run_id"]]["state"] == "CANCELED"


def test_a_schedule_becomes_a_recurring_run_until_deleted(jobs: Jobs) -> None:
    name = "readmission-cron"
    with running_operator(jobs.plane, jobs.namespace, jobs.kfp):
        created = jobs.create(name, schedule="0 3 * * 0")
        jobs.submitted(created)
        prefix = f"{jobs.namespace}-{name}-{created['metadata']['uid'][:8]}"

        def recurring() -> list[dict[str, Any]]:
            return [r for r in jobs.kfp.recurring_runs.values() if r["display_name"] == f"{prefix}-schedule"]

        jobs.wait(lambda: len(recurring()) == 1, "a recurring run")
        (scheduled,) = recurring()
        assert scheduled["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 0"
        assert scheduled["runtime_config"]["parameters"]["job_name"] == jobs.run_name(created)

        jobs.patch(name, {"schedule": "0 4 * * *"})
        jobs.wait(
            lambda: [r["trigger"]["cron_schedule"]["cron"] for r in recurring()] == ["0 0 4 * * *"],
            "the recurring run replaced",
        )
        jobs.delete(name)
        jobs.wait(lambda: jobs.gone(name), "the TrainingJob deleted")
        assert recurring() == []


# MLflow's SQL store uses a loader SQLAlchemy 2.1 deprecates: nothing of ours, nothing to act on.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")
def test_a_success_reports_the_registered_version_and_the_decision(jobs: Jobs, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    name = "readmission-tracked"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow = MlflowClient(tracking_uri=tracking_uri)
    experiment = mlflow.create_experiment("clinops/readmission-risk", artifact_location=str(tmp_path / "artifacts"))
    with running_operator(jobs.plane, jobs.namespace, jobs.kfp, tracking_uri=tracking_uri):
        created = jobs.create(name)
        run = jobs.submitted(created)
        assert jobs.kfp.parameters(run["run_id"])["tracking_uri"] == tracking_uri
        # What the pipeline's start_run, register and promote steps leave on the search's tracking run.
        tags = {
            "clinops.training_job": jobs.run_name(created),
            "clinops.model_version": "4",
            "clinops.promotion.decision": "promoted",
        }
        tracked = mlflow.create_run(experiment, run_name=jobs.run_name(created), tags=tags)
        jobs.kfp.set_state(run["run_id"], "SUCCEEDED")
        status = jobs.wait_status(name, lambda s: s.get("modelVersion") == "4", "the registered version")
        assert (status["phase"], status["promoted"]) == ("Succeeded", True)
        assert status["mlflowRunId"] == tracked.info.run_id
        jobs.delete(name)
        jobs.wait(lambda: jobs.gone(name), "the TrainingJob deleted")
