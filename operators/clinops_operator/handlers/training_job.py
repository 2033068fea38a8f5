"""TrainingJob: one KFP run per generation, polled into status, a recurring run for a schedule, cancelled on delete."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

import kopf

from clinops.specs.common import API_GROUP
from clinops.specs.status import TrainingPhase
from clinops.specs.training_job import TrainingJobSpec
from clinops_operator import k8s, kfp_api, metrics
from clinops_operator.builders import training_job as build
from clinops_operator.builders.common import InvalidSpecError, conditions_of, now, parse_spec
from clinops_operator.pausing import pause
from clinops_operator.settings import Runtime, runtime

KIND = "TrainingJob"
PLURAL = "trainingjobs"
VERSION = "v1alpha1"


class _Job:
    """One generation of a TrainingJob as KFP knows it: its experiment, run name and parameters."""

    def __init__(self, run: Runtime, namespace: str, name: str, uid: str, generation: int, spec: TrainingJobSpec):
        self.kfp = kfp_api.client(run.training.kfp_endpoint)
        self.experiment_id = kfp_api.ensure_experiment(self.kfp, build.experiment_name(namespace=namespace))
        self.run_name = build.run_name(namespace=namespace, name=name, uid=uid, generation=generation)
        self.parameters = build.parameters(
            name=self.run_name,
            spec=spec,
            tracking_uri=run.training.tracking_uri,
            lake_root=run.training.lake_root,
        )
        self.recurring = build.recurring_run(
            namespace=namespace, name=name, uid=uid, generation=generation, spec=spec, parameters=self.parameters
        )
        self.recurring_name = build.recurring_run_name(namespace=namespace, name=name, uid=uid)
        self._pipeline: dict[str, Any] | None = None

    def pipeline(self) -> dict[str, Any]:
        # A compile takes a second or so; a first reconcile with a schedule asks twice (run and recurring run).
        if self._pipeline is None:
            self._pipeline = build.compiled_pipeline(parameters=self.parameters)
        return self._pipeline


def _write_status(
    run: Runtime,
    namespace: str,
    name: str,
    *,
    run_id: str,
    state: str | None,
    generation: int,
    model: str,
    job_name: str,
) -> None:
    def compute(current: Mapping[str, Any]) -> dict[str, Any] | None:
        previous = current.get("status") or {}
        # A newer generation has its own run: what this one's run does no longer describes the object.
        if current["metadata"].get("generation") != generation:
            return None
        if previous.get("observedGeneration") == generation and previous.get("runId") not in (None, run_id):
            return None
        outcome = None
        if build.phase(state) is TrainingPhase.SUCCEEDED and run.training.read_outcomes:
            outcome = kfp_api.outcome(run.training.tracking_uri, model=model, job_name=job_name)
        return build.status(
            state=state,
            run_id=run_id,
            generation=generation,
            outcome=outcome,
            previous_conditions=conditions_of(current),
            now=now(),
        )

    k8s.update_status(run.api, KIND, namespace, name, compute)


def _run_name(body: Mapping[str, Any]) -> str:
    metadata = body["metadata"]
    return build.run_name(
        namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"], generation=metadata["generation"]
    )


@kopf.on.resume(API_GROUP, VERSION, PLURAL)
@kopf.on.create(API_GROUP, VERSION, PLURAL)
@kopf.on.update(API_GROUP, VERSION, PLURAL, field="spec")
@metrics.reconciled(KIND)
def reconcile(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    body: kopf.Body,
    meta: kopf.Meta,
    memo: Any,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    run = runtime(memo)
    assert namespace is not None, "TrainingJob is a namespaced kind"
    uid = str(meta["uid"])
    generation = int(meta.get("generation") or 1)
    try:
        parsed = parse_spec(TrainingJobSpec, dict(spec))
    except InvalidSpecError as exc:
        problem = str(exc)
        failed = build.failed_status(
            problem=problem, generation=generation, previous_conditions=conditions_of(body), now=now()
        )
        k8s.update_status(run.api, KIND, namespace, name, lambda _current: failed)
        raise kopf.PermanentError(f"Rejected the spec: {problem}") from exc
    if not run.training.kfp_endpoint:
        raise kopf.TemporaryError("no KFP endpoint is configured (CLINOPS_KFP_ENDPOINT)", delay=60)
    job = _Job(run, namespace, name, uid, generation, parsed)
    submitted = kfp_api.find_or_submit(
        job.kfp, job.experiment_id, job.run_name, pipeline=job.pipeline, parameters=job.parameters, logger=logger
    )
    kfp_api.sync_recurring_run(
        job.kfp, job.experiment_id, job.recurring_name, job.recurring, pipeline=job.pipeline, logger=logger
    )
    _write_status(
        run,
        namespace,
        name,
        run_id=submitted.run_id,
        state=submitted.state,
        generation=generation,
        model=parsed.model.name,
        job_name=job.run_name,
    )


def _settled(run: Runtime, body: Mapping[str, Any]) -> bool:
    """Whether the current generation's run has nothing more to report: it ended, and MLflow told what it made."""
    status = body.get("status") or {}
    if not status.get("runId") or status.get("observedGeneration") != body["metadata"].get("generation"):
        # Reconciling the new generation writes its run first.
        return True
    if status.get("phase") == TrainingPhase.FAILED.value:
        return True
    if status.get("phase") == TrainingPhase.SUCCEEDED.value:
        # The search's tracking run may show its version a moment after KFP reports success.
        return not run.training.read_outcomes or status.get("modelVersion") is not None
    return False


def _follow(run: Runtime, namespace: str, name: str, body: Mapping[str, Any]) -> None:
    status = body.get("status") or {}
    kfp = kfp_api.client(run.training.kfp_endpoint)
    _write_status(
        run,
        namespace,
        name,
        run_id=str(status["runId"]),
        state=kfp_api.run_state(kfp, str(status["runId"])),
        generation=int(body["metadata"]["generation"]),
        model=str((body.get("spec") or {}).get("model", {}).get("name", "")),
        job_name=_run_name(body),
    )


@kopf.daemon(API_GROUP, VERSION, PLURAL, cancellation_timeout=5)
async def poll(
    name: str, namespace: str | None, body: kopf.Body, memo: Any, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Follow the current generation's run into status until it settles; sleeping in between, never busy."""
    run = runtime(memo)
    assert namespace is not None, "TrainingJob is a namespaced kind"
    while not stopped:
        if not _settled(run, body):
            # The KFP and Kubernetes clients block: off the event loop that every handler shares.
            await asyncio.to_thread(_follow, run, namespace, name, copy.deepcopy(dict(body)))
        await pause(stopped, run.training.poll_interval_s)


@kopf.on.delete(API_GROUP, VERSION, PLURAL)
def cancel(name: str, namespace: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Terminate the run still under way and drop the recurring run: both live outside the cluster."""
    run = runtime(memo)
    assert namespace is not None, "TrainingJob is a namespaced kind"
    if not run.training.kfp_endpoint:
        return
    kfp = kfp_api.client(run.training.kfp_endpoint)
    # The status names the run: deleting bumps the generation, so the run's name no longer follows from the body.
    run_id = (body.get("status") or {}).get("runId")
    if run_id and build.phase(kfp_api.run_state(kfp, run_id)) not in (TrainingPhase.SUCCEEDED, TrainingPhase.FAILED):
        kfp_api.terminate(kfp, run_id, logger=logger)
    experiment_id = kfp_api.ensure_experiment(kfp, build.experiment_name(namespace=namespace))
    recurring_name = build.recurring_run_name(namespace=namespace, name=name, uid=body["metadata"]["uid"])
    kfp_api.sync_recurring_run(kfp, experiment_id, recurring_name, None, pipeline=dict, logger=logger)
