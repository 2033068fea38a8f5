"""DriftMonitor: a Flink drift job for a deployment's model, its windows into status, retraining on persistent drift."""

from __future__ import annotations

import asyncio
import calendar
import copy
import time
from collections.abc import Mapping
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException

from clinops.monitoring.reference import ProfileError, Reference, reference_of, registered_version
from clinops.specs.common import API_GROUP
from clinops.specs.drift_monitor import DriftMonitorSpec, DriftPhase
from clinops.specs.model_deployment import ModelDeploymentSpec
from clinops_operator import drift_results, k8s, metrics
from clinops_operator.builders import drift_monitor as build
from clinops_operator.builders.common import InvalidSpecError, name_problem, now, parse_spec
from clinops_operator.pausing import pause
from clinops_operator.settings import Runtime, runtime

KIND = "DriftMonitor"
PLURAL = "driftmonitors"
VERSION = "v1alpha1"
API_VERSION = f"{API_GROUP}/{VERSION}"
FLINK_API_VERSION = "flink.apache.org/v1beta1"
LONGEST_ROLE = f"-{build.PROFILE_ROLE}"
# NotReadyError on the deployment or the registry: soon enough to follow a first training, rare enough to cost nothing.
WAIT_DELAY_S = 30


class NotReadyError(Exception):
    """Something outside the monitor is not there yet; ``reason`` is the Ready condition's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CannotRunError(Exception):
    """The monitor cannot run as the operator is configured; ``reason`` is the Failed condition's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse(name: str, spec: Mapping[str, Any]) -> DriftMonitorSpec:
    problem = name_problem(name, longest_suffix=LONGEST_ROLE)
    if problem is not None:
        raise InvalidSpecError(f"metadata.name: {problem}")
    return parse_spec(DriftMonitorSpec, dict(spec))


def _generation(body: Mapping[str, Any]) -> int | None:
    generation = body["metadata"].get("generation")
    return None if generation is None else int(generation)


def _model_uri(run: Runtime, namespace: str, deployment: str) -> str:
    found = k8s.read(run.api, API_VERSION, "ModelDeployment", namespace, deployment)
    if found is None:
        raise NotReadyError("DeploymentNotFound", f"ModelDeployment {deployment} does not exist")
    try:
        return parse_spec(ModelDeploymentSpec, found.get("spec") or {}).model.uri
    except InvalidSpecError as exc:
        raise NotReadyError("DeploymentInvalid", f"ModelDeployment {deployment}: {exc}") from exc


def _resolve(run: Runtime, namespace: str, spec: DriftMonitorSpec) -> tuple[str, str]:
    model_uri = _model_uri(run, namespace, spec.deployment)
    try:
        return registered_version(model_uri, run.training.tracking_uri)
    except ProfileError as exc:
        raise NotReadyError("ModelNotRegistered", str(exc)) from exc


def _apply_children(
    run: Runtime, body: Mapping[str, Any], spec: DriftMonitorSpec, model: str, version: str, logger: kopf.Logger
) -> Reference:
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        reference = reference_of(model, version, run.training.tracking_uri)
    except ProfileError as exc:
        raise NotReadyError("NoReferenceProfile", str(exc)) from exc
    try:
        children = build.children(name=name, namespace=namespace, spec=spec, config=run.drift, reference=reference)
    except build.SettingsError as exc:
        raise CannotRunError("OperatorSettings", str(exc)) from exc
    kopf.adopt(children, owner=cast(kopf.Body, body))
    for child in children:
        try:
            k8s.apply(run.api, child, logger=logger)
        except ApiException as exc:
            # The apiserver judges the FlinkDeployment by the Flink operator's schema (its flinkVersion enum, say).
            if exc.status in (400, 422):
                raise CannotRunError(
                    "ChildRejected", f"{child['kind']} {child['metadata']['name']}: {exc.body}"
                ) from exc
            raise
    return reference


def _job_state(run: Runtime, namespace: str, name: str) -> str | None:
    found = k8s.read(run.api, FLINK_API_VERSION, "FlinkDeployment", namespace, build.job_name(name))
    state = ((found or {}).get("status") or {}).get("jobStatus", {}).get("state")
    return None if state is None else str(state)


def _write(run: Runtime, namespace: str, name: str, status: Mapping[str, Any]) -> None:
    k8s.update_status(run.api, KIND, namespace, name, lambda _current: dict(status))


@kopf.on.resume(API_GROUP, VERSION, PLURAL)
@kopf.on.create(API_GROUP, VERSION, PLURAL)
@kopf.on.update(API_GROUP, VERSION, PLURAL, field="spec")
@metrics.reconciled(KIND)
def reconcile(
    name: str, namespace: str | None, spec: kopf.Spec, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    run = runtime(memo)
    assert namespace is not None, "DriftMonitor is a namespaced kind"
    generation = _generation(body)
    previous = dict(body.get("status") or {})
    try:
        parsed = parse(name, spec)
        model, version = _resolve(run, namespace, parsed)
        reference = _apply_children(run, body, parsed, model, version, logger)
    except (InvalidSpecError, CannotRunError) as exc:
        reason = exc.reason if isinstance(exc, CannotRunError) else "InvalidSpec"
        _write(
            run,
            namespace,
            name,
            build.failed_status(
                problem=str(exc),
                reason=reason,
                generation=generation,
                previous_conditions=list(previous.get("conditions") or []),
                now=now(),
            ),
        )
        raise kopf.PermanentError(f"Cannot monitor: {exc}") from exc
    except NotReadyError as exc:
        waiting = build.waiting_status(
            previous=previous, reason=exc.reason, message=str(exc), generation=generation, now=now()
        )
        _write(run, namespace, name, waiting)
        raise kopf.TemporaryError(str(exc), delay=WAIT_DELAY_S) from exc

    # Read once: compute runs again on every conflicting write.
    job_state = _job_state(run, namespace, name)

    def compute(current: Mapping[str, Any]) -> dict[str, Any]:
        status = current.get("status") or {}
        return build.status(
            previous={**status, "flinkJob": build.job_name(name)},
            generation=generation,
            reference=reference,
            job_state=job_state,
            last_window=status.get("lastWindow"),
            drifted_windows=int(status.get("driftedWindows") or 0),
            persistence=parsed.persistence,
            retraining_active=status.get("phase") == DriftPhase.RETRAINING.value,
            decision=None,
            now=now(),
        )

    k8s.update_status(run.api, KIND, namespace, name, compute)


def _training_spec(run: Runtime, namespace: str, spec: DriftMonitorSpec) -> dict[str, Any] | None:
    retrain = spec.action.retrain
    assert retrain is not None
    if retrain.template is not None:
        return retrain.template.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert retrain.training_job_ref is not None
    found = k8s.read(run.api, API_VERSION, "TrainingJob", namespace, retrain.training_job_ref.name)
    return None if found is None else dict(found.get("spec") or {})


def _started_at(last_retraining: Mapping[str, Any] | None) -> float | None:
    if not last_retraining or not last_retraining.get("startedAt"):
        return None
    return float(calendar.timegm(time.strptime(str(last_retraining["startedAt"]), "%Y-%m-%dT%H:%M:%SZ")))


def _start_retraining(
    run: Runtime,
    body: Mapping[str, Any],
    spec: DriftMonitorSpec,
    number: int,
    window_end: str | None,
    logger: kopf.Logger,
) -> build.RetrainDecision | dict[str, Any]:
    """The retraining's status entry once its TrainingJob exists, or why none could start."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    training_spec = _training_spec(run, namespace, spec)
    if training_spec is None:
        reference = spec.action.retrain.training_job_ref if spec.action.retrain else None
        missing = reference.name if reference else ""
        return build.RetrainDecision(False, "TrainingJobRefNotFound", f"TrainingJob {missing} does not exist")
    job = build.retraining_job(
        name=name, namespace=namespace, number=number, training_spec=training_spec, window_end=window_end
    )
    kopf.adopt(job, owner=cast(kopf.Body, body))
    # A deterministic name: a retry or a restart between this and the status write finds the same TrainingJob.
    k8s.apply(run.api, job, logger=logger)
    started = now()
    message = f"Drift persisted; started TrainingJob {job['metadata']['name']}"
    k8s.apply(
        run.api,
        build.event(
            involved=body, name=f"{name}.retrain-{number}", reason="RetrainingStarted", message=message, now=started
        ),
        logger=logger,
    )
    logger.info(message)
    return {"name": job["metadata"]["name"], "startedAt": started, "windowEnd": window_end}


def _observe(
    run: Runtime,
    body: Mapping[str, Any],
    spec: DriftMonitorSpec,
    records: list[dict[str, Any]],
    reference: Reference | None,
    logger: kopf.Logger,
) -> None:
    """Fold new windows into status and start a retraining when the drift run is long enough."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    current = k8s.read(run.api, API_VERSION, KIND, namespace, name)
    if current is None:
        return
    status = current.get("status") or {}
    last_window, drifted = build.advance(status.get("lastWindow"), int(status.get("driftedWindows") or 0), records)
    last_retraining = status.get("lastRetraining")
    active = last_retraining is not None and build.training_active(
        k8s.read(run.api, API_VERSION, "TrainingJob", namespace, last_retraining["name"])
    )
    decision = build.retrain_decision(
        spec=spec,
        drifted_windows=drifted,
        last_retraining=last_retraining,
        active=active,
        now=time.time(),
        started_at=_started_at(last_retraining),
    )
    started: dict[str, Any] | None = None
    if decision.due:
        number = int(status.get("retrainings") or 0) + 1
        outcome = _start_retraining(run, current, spec, number, (last_window or {}).get("end"), logger)
        if isinstance(outcome, build.RetrainDecision):
            decision = outcome
        else:
            started = {"lastRetraining": outcome, "retrainings": number}
    job_state = _job_state(run, namespace, name)

    def compute(latest: Mapping[str, Any]) -> dict[str, Any] | None:
        if _generation(latest) != _generation(current):
            return None
        now_status = latest.get("status") or {}
        window, run_length = build.advance(
            now_status.get("lastWindow"), int(now_status.get("driftedWindows") or 0), records
        )
        previous = dict(now_status)
        if started is not None:
            # The run that started a retraining is spent: the next one needs `persistence` new drifted windows.
            previous |= started
            run_length = 0
        return build.status(
            previous=previous,
            generation=_generation(latest),
            reference=reference,
            job_state=job_state,
            last_window=window,
            drifted_windows=run_length,
            persistence=spec.persistence,
            retraining_active=active or started is not None,
            decision=decision,
            now=now(),
        )

    k8s.update_status(run.api, KIND, namespace, name, compute)


def _follow_reference(
    run: Runtime, body: Mapping[str, Any], spec: DriftMonitorSpec, logger: kopf.Logger
) -> Reference | None:
    """When the deployment's alias moved to another version, the job is upgraded to that version's profile."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        model, version = _resolve(run, namespace, spec)
    except NotReadyError as exc:
        logger.warning("Cannot look up the monitored version: %s", exc)
        return None
    if version == (body.get("status") or {}).get("modelVersion"):
        return None
    try:
        reference = _apply_children(run, body, spec, model, version, logger)
    except (NotReadyError, CannotRunError) as exc:
        logger.warning("Cannot move the job to models:/%s/%s: %s", model, version, exc)
        return None
    message = f"The drift job now compares against models:/{model}/{version}"
    event = build.event(
        involved=body, name=f"{name}.reference-{version}", reason="ReferenceUpdated", message=message, now=now()
    )
    k8s.apply(run.api, event, logger=logger)
    return reference


def _ready_to_watch(body: Mapping[str, Any]) -> bool:
    status = body.get("status") or {}
    return (
        status.get("observedGeneration") == _generation(body)
        and status.get("phase")
        not in (
            None,
            DriftPhase.FAILED.value,
        )
        and bool(status.get("modelVersion"))
    )


@kopf.daemon(API_GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def watch_results(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    meta: kopf.Meta,
    memo: Any,
    stopped: kopf.DaemonStopped,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Read the drift job's results for as long as the monitor exists; the blocking clients run off the loop."""
    run = runtime(memo)
    assert namespace is not None, "DriftMonitor is a namespaced kind"
    reader: drift_results.Results | None = None
    source: tuple[str, ...] | None = None
    looked_up = time.monotonic()
    try:
        while not stopped:
            snapshot = copy.deepcopy(dict(body))
            if not _ready_to_watch(snapshot):
                await pause(stopped, run.drift.poll_interval_s)
                continue
            try:
                spec = parse(name, snapshot["spec"])
            except InvalidSpecError:
                await pause(stopped, run.drift.poll_interval_s)
                continue
            if source != drift_results.source_key(spec):
                if reader is not None:
                    await asyncio.to_thread(reader.close)
                reader = await asyncio.to_thread(
                    drift_results.open_results,
                    spec,
                    namespace=namespace,
                    name=name,
                    uid=str(meta["uid"]),
                    bootstrap=run.drift.kafka_bootstrap,
                    lake=run.drift.lake,
                )
                source = drift_results.source_key(spec)
            records = [] if reader is None else await asyncio.to_thread(reader.read, run.drift.poll_interval_s)
            reference = None
            if time.monotonic() - looked_up >= run.drift.resolve_interval_s:
                looked_up = time.monotonic()
                reference = await asyncio.to_thread(_follow_reference, run, snapshot, spec, logger)
            await asyncio.to_thread(_observe, run, snapshot, spec, records, reference, logger)
            if reader is not None:
                await asyncio.to_thread(reader.commit)
            if reader is None or not reader.blocks:
                await pause(stopped, run.drift.poll_interval_s)
    finally:
        if reader is not None:
            await asyncio.to_thread(reader.close)
