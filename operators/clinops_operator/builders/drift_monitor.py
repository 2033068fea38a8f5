"""DriftMonitor: the Flink drift job and its reference profile, windows into status, and when to retrain."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clinops.monitoring.reference import Reference
from clinops.specs.common import API_GROUP, API_VERSION
from clinops.specs.drift_monitor import DriftMonitorSpec, DriftPhase, SourceKind
from clinops.specs.status import ConditionStatus, TrainingPhase
from clinops_operator.builders import common
from clinops_operator.builders.common import (
    child_name,
    condition,
    labels,
    restricted_container_security,
    restricted_pod_security,
)

APP = "clinops-drift"
COMPONENT = "drift-monitor"
JOB_ROLE = "drift"
PROFILE_ROLE = "drift-profile"
PROFILE_DIR = "/opt/clinops/profile"
PROFILE_FILE = "profile.json"
PROFILE_DIGEST = f"{API_GROUP}/profile-sha256"
RETRAIN_ROLE = "retrain"
MONITOR_LABEL = f"{API_GROUP}/drift-monitor"
# A ConfigMap holds at most 1 MiB; what is left is room for its metadata.
MAX_PROFILE_BYTES = 1_000_000
JOB_MODULE = "clinops.streaming.flink"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
# Flink's Prometheus reporter, a plugin of the platform image's Flink: the PodMonitor and the alerts read it.
PROMETHEUS_REPORTER = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
# The container the Flink operator fills in: a pod template names it to add mounts and environment.
FLINK_CONTAINER = "flink-main-container"
# The Flink Kubernetes Operator's job states that mean the job is up and computing.
RUNNING_JOB_STATES = frozenset({"RUNNING"})
ENDED_TRAINING = frozenset({TrainingPhase.SUCCEEDED.value, TrainingPhase.FAILED.value})


class SettingsError(ValueError):
    """The operator's configuration cannot run this monitor (a Kafka source without a broker, say)."""


@dataclass(frozen=True)
class DriftConfig:
    """What the operator's environment decides for every drift job (the spec says what to monitor)."""

    image: str
    flink_version: str
    jar_uri: str
    # The stream env's interpreter in the image: its PATH leads to the core env, which has no PyFlink.
    python: str = "/opt/clinops/.venv-flink/bin/python"
    # Where every JobManager and TaskManager serves its metrics (the drift gauges among them); None serves none.
    metrics_port: int | None = 9249
    image_pull_policy: str = "IfNotPresent"
    service_account: str = "flink"
    kafka_bootstrap: str | None = None
    lake: str | None = None
    # A Secret whose keys become the job's environment: object-store credentials for checkpoints and the lake.
    env_secret: str | None = None
    s3_endpoint: str | None = None
    checkpoint_root: str = "s3://clinops-flink/checkpoints"
    savepoint_root: str = "s3://clinops-flink/savepoints"
    run_as_user: int = 9999
    job_manager: Mapping[str, Any] = field(default_factory=lambda: {"memory": "1024m", "cpu": 0.5})
    task_manager: Mapping[str, Any] = field(default_factory=lambda: {"memory": "2048m", "cpu": 1})
    # How often the results stream is read and the model's alias looked up again.
    poll_interval_s: float = 5.0
    resolve_interval_s: float = 60.0


def _labels(name: str) -> dict[str, str]:
    return labels(name=APP, instance=name, component=COMPONENT)


def _meta(child: str, name: str, namespace: str) -> dict[str, Any]:
    return {"name": child, "namespace": namespace, "labels": _labels(name)}


def job_name(name: str) -> str:
    return child_name(name, JOB_ROLE)


def profile_name(name: str) -> str:
    return child_name(name, PROFILE_ROLE)


def digest(reference: Reference) -> str:
    return hashlib.sha256(reference.profile_json().encode()).hexdigest()


def profile_config_map(*, name: str, namespace: str, reference: Reference) -> dict[str, Any]:
    """The reference profile the job compares against, where ``kubectl`` shows it and the job mounts it."""
    text = reference.profile_json()
    if len(text.encode()) > MAX_PROFILE_BYTES:
        raise SettingsError(
            f"the reference profile of models:/{reference.model}/{reference.version} is {len(text.encode())} bytes; "
            f"a ConfigMap holds {MAX_PROFILE_BYTES} (monitor fewer features with statistics.features)"
        )
    meta = _meta(profile_name(name), name, namespace)
    meta["annotations"] = {PROFILE_DIGEST: digest(reference), f"{API_GROUP}/model-version": reference.version}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {PROFILE_FILE: text}}


def _state_dirs(*, name: str, namespace: str, spec: DriftMonitorSpec, config: DriftConfig) -> dict[str, str]:
    checkpoints = spec.flink.checkpoint_dir or config.checkpoint_root
    savepoints = spec.flink.savepoint_dir or config.savepoint_root
    # Flink 1.x and 2.x name the same settings differently.
    legacy = config.flink_version.startswith("v1_")
    return {
        "state.checkpoints.dir" if legacy else "execution.checkpointing.dir": f"{checkpoints}/{namespace}/{name}",
        "state.savepoints.dir"
        if legacy
        else "execution.checkpointing.savepoint-dir": f"{savepoints}/{namespace}/{name}",
    }


def job_arguments(
    *, name: str, namespace: str, spec: DriftMonitorSpec, config: DriftConfig, reference: Reference
) -> list[str]:
    """``python -m clinops.streaming.flink drift …`` for this monitor, the reference pinned to a version."""
    if spec.source.kind is SourceKind.KAFKA and not config.kafka_bootstrap:
        raise SettingsError("source.kind is kafka but the operator has no broker (CLINOPS_KAFKA_BOOTSTRAP)")
    if spec.source.kind is SourceKind.LAKE and not config.lake:
        raise SettingsError("source.kind is lake but the operator has no lake (CLINOPS_LAKE)")
    arguments = spec.job_arguments(
        profile=f"{PROFILE_DIR}/{PROFILE_FILE}",
        lake=config.lake if spec.source.kind is SourceKind.LAKE else None,
        bootstrap=config.kafka_bootstrap if spec.source.kind is SourceKind.KAFKA else None,
    )
    arguments += [
        f"--model={reference.model}",
        f"--model-version={reference.version}",
        # Its own group: two monitors of one deployment must each read every prediction.
        f"--group-id=clinops-drift-{namespace}-{name}",
    ]
    if spec.statistics.features is None:
        arguments.append(f"--features={','.join(reference.features)}")
    return arguments


def flink_deployment(
    *, name: str, namespace: str, spec: DriftMonitorSpec, config: DriftConfig, reference: Reference
) -> dict[str, Any]:
    """The FlinkDeployment running the PyFlink drift job in application mode, upgraded through savepoints."""
    container: dict[str, Any] = {
        "name": FLINK_CONTAINER,
        # Flink writes its logs and temporary files under its own home: the root filesystem stays writable.
        "securityContext": restricted_container_security(read_only_root=False),
        "volumeMounts": [{"name": "profile", "mountPath": PROFILE_DIR, "readOnly": True}],
    }
    if config.env_secret:
        container["envFrom"] = [{"secretRef": {"name": config.env_secret}}]
    flink_configuration = {
        "taskmanager.numberOfTaskSlots": str(spec.flink.parallelism),
        "python.client.executable": config.python,
        "python.executable": config.python,
        **_state_dirs(name=name, namespace=namespace, spec=spec, config=config),
    }
    if config.s3_endpoint:
        flink_configuration |= {"s3.endpoint": config.s3_endpoint, "s3.path.style.access": "true"}
    if config.metrics_port is not None:
        flink_configuration |= {
            "metrics.reporter.prom.factory.class": PROMETHEUS_REPORTER,
            "metrics.reporter.prom.port": str(config.metrics_port),
        }
    flink_configuration |= spec.flink.config
    meta = _meta(job_name(name), name, namespace)
    meta["annotations"] = {PROFILE_DIGEST: digest(reference)}
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": meta,
        "spec": {
            "image": spec.flink.image or config.image,
            "imagePullPolicy": config.image_pull_policy,
            "flinkVersion": config.flink_version,
            "serviceAccount": config.service_account,
            "flinkConfiguration": flink_configuration,
            "podTemplate": {
                "metadata": {"labels": _labels(name)},
                "spec": {
                    "securityContext": restricted_pod_security(config.run_as_user),
                    "containers": [container],
                    "volumes": [{"name": "profile", "configMap": {"name": profile_name(name)}}],
                },
            },
            "jobManager": {"replicas": 1, "resource": dict(config.job_manager)},
            "taskManager": {"resource": dict(config.task_manager)},
            "job": {
                "jarURI": config.jar_uri,
                "entryClass": PYTHON_DRIVER,
                "args": [
                    "-pym",
                    JOB_MODULE,
                    *job_arguments(name=name, namespace=namespace, spec=spec, config=config, reference=reference),
                ],
                "parallelism": spec.flink.parallelism,
                "upgradeMode": "savepoint",
                "state": "running",
            },
        },
    }


def children(
    *, name: str, namespace: str, spec: DriftMonitorSpec, config: DriftConfig, reference: Reference
) -> list[dict[str, Any]]:
    """The profile first: the job mounts it."""
    return [
        profile_config_map(name=name, namespace=namespace, reference=reference),
        flink_deployment(name=name, namespace=namespace, spec=spec, config=config, reference=reference),
    ]


# --- windows and retraining ------------------------------------------------------------------------------------


def window_status(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``drift-results`` record as ``status.lastWindow``."""
    window = {
        "start": record.get("window_start"),
        "end": str(record["window_end"]),
        "rows": record.get("rows"),
        "driftShare": float(record["drift_share"]),
        "drifted": bool(record["drifted"]),
        "driftedFeatures": list(record.get("drifted_features") or [])[:1000],
    }
    return {key: value for key, value in window.items() if value is not None}


def advance(
    last_window: Mapping[str, Any] | None, drifted_windows: int, records: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, Any] | None, int]:
    """The newest window and the run of drifted windows ending at it, after ``records``.

    A window is counted once: one ending no later than the last one seen is a replay (a re-read after a restart)
    or late, and changes nothing.
    """
    newest = dict(last_window) if last_window else None
    run = drifted_windows
    for record in sorted(records, key=lambda found: str(found["window_end"])):
        window = window_status(record)
        if newest is not None and window["end"] <= newest["end"]:
            continue
        run = run + 1 if window["drifted"] else 0
        newest = window
    return newest, run


@dataclass(frozen=True)
class RetrainDecision:
    due: bool
    reason: str
    message: str


def retrain_decision(
    *,
    spec: DriftMonitorSpec,
    drifted_windows: int,
    last_retraining: Mapping[str, Any] | None,
    active: bool,
    now: float,
    started_at: float | None,
) -> RetrainDecision:
    """Whether persistent drift starts a retraining now: never while one runs, never within the cooldown."""
    retrain = spec.action.retrain
    if drifted_windows < spec.persistence:
        return RetrainDecision(False, "NoPersistentDrift", f"{drifted_windows} of {spec.persistence} windows drifted")
    if retrain is None:
        return RetrainDecision(False, "NoRetrainAction", "drift persists; action.retrain is not set")
    if active and last_retraining is not None:
        return RetrainDecision(False, "RetrainingActive", f"TrainingJob {last_retraining['name']} is still running")
    if started_at is not None and now - started_at < retrain.cooldown_seconds:
        return RetrainDecision(False, "Cooldown", f"the last retraining started less than {retrain.cooldown} ago")
    return RetrainDecision(True, "PersistentDrift", f"{drifted_windows} consecutive windows drifted")


def retraining_name(name: str, number: int) -> str:
    return child_name(name, f"{RETRAIN_ROLE}-{number}")


def retraining_job(
    *, name: str, namespace: str, number: int, training_spec: Mapping[str, Any], window_end: str | None
) -> dict[str, Any]:
    """The TrainingJob a retraining starts: the referenced or templated spec, run once (no schedule)."""
    spec = {key: value for key, value in training_spec.items() if key != "schedule"}
    meta = {
        "name": retraining_name(name, number),
        "namespace": namespace,
        "labels": {**labels(name=APP, instance=name, component="retraining"), MONITOR_LABEL: name},
        "annotations": {f"{API_GROUP}/triggered-by-window": window_end or ""},
    }
    return {"apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": meta, "spec": spec}


def training_active(training_job: Mapping[str, Any] | None) -> bool:
    """Whether a retraining TrainingJob still runs: gone or ended is not."""
    if training_job is None:
        return False
    return (training_job.get("status") or {}).get("phase") not in ENDED_TRAINING


def phase(
    *,
    job_state: str | None,
    last_window: Mapping[str, Any] | None,
    drifted_windows: int,
    persistence: int,
    retraining: bool,
) -> DriftPhase:
    if retraining:
        return DriftPhase.RETRAINING
    if last_window is not None and drifted_windows >= persistence:
        return DriftPhase.DRIFTED
    if job_state in RUNNING_JOB_STATES or last_window is not None:
        return DriftPhase.RUNNING
    return DriftPhase.PENDING


def status(
    *,
    previous: Mapping[str, Any],
    generation: int | None,
    reference: Reference | None,
    job_state: str | None,
    last_window: Mapping[str, Any] | None,
    drifted_windows: int,
    persistence: int,
    retraining_active: bool,
    decision: RetrainDecision | None,
    now: str,
) -> dict[str, Any]:
    """The monitor's status: where its job is, the newest window and the drift run, the last retraining."""
    current = phase(
        job_state=job_state,
        last_window=last_window,
        drifted_windows=drifted_windows,
        persistence=persistence,
        retraining=retraining_active,
    )
    prior = list(previous.get("conditions") or [])

    def holds(type: str, true: bool, reason: str, message: str) -> dict[str, Any]:
        status = ConditionStatus.TRUE if true else ConditionStatus.FALSE
        return condition(
            type=type, status=status, reason=reason, message=message, generation=generation, now=now, previous=prior
        )

    ready = current is not DriftPhase.PENDING
    job = f"the Flink job is {job_state or 'not reported yet'}"
    conditions = [holds("Ready", ready, "Monitoring" if ready else "JobStarting", job)]
    if last_window is not None:
        drifted = bool(last_window.get("drifted"))
        share = f"window ending {last_window['end']}: drift share {last_window['driftShare']:.3f}"
        conditions.append(holds("Drifted", drifted, "WindowDrifted" if drifted else "WindowStable", share))
    if decision is not None:
        conditions.append(holds("RetrainingDue", decision.due, decision.reason, decision.message))
    built = {
        **{key: value for key, value in previous.items() if key in ("lastRetraining", "retrainings", "flinkJob")},
        "phase": current.value,
        "jobState": job_state,
        "lastWindow": last_window,
        "driftedWindows": drifted_windows,
        "conditions": conditions,
        "observedGeneration": generation,
    }
    if reference is not None:
        built |= {"model": reference.model, "modelVersion": reference.version}
    else:
        built |= {key: previous[key] for key in ("model", "modelVersion") if key in previous}
    return built


def failed_status(
    *, problem: str, reason: str, generation: int | None, previous_conditions: list[dict[str, Any]], now: str
) -> dict[str, Any]:
    """The status of a DriftMonitor the operator cannot run: an invalid spec, or settings that cannot serve it."""
    return common.failed_status(
        phase=DriftPhase.FAILED.value,
        problem=problem,
        reason=reason,
        generation=generation,
        previous_conditions=previous_conditions,
        now=now,
    )


def waiting_status(
    *, previous: Mapping[str, Any], reason: str, message: str, generation: int | None, now: str
) -> dict[str, Any]:
    """Pending on something outside the monitor (its deployment, the registry): retried, not failed."""
    kept = {key: value for key, value in previous.items() if key not in ("phase", "conditions", "observedGeneration")}
    ready = condition(
        type="Ready",
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        generation=generation,
        now=now,
        previous=list(previous.get("conditions") or []),
    )
    return {**kept, "phase": DriftPhase.PENDING.value, "conditions": [ready], "observedGeneration": generation}


def event(
    *, involved: Mapping[str, Any], name: str, reason: str, message: str, now: str, type: str = "Normal"
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` with a deterministic name: posting it twice is one Event."""
    metadata = involved["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
        },
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": common.MANAGED_BY},
        "reportingComponent": common.MANAGED_BY,
        "reportingInstance": common.MANAGED_BY,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
