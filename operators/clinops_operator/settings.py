"""The operator's one startup hook: kopf's settings and the runtime every handler finds in its memo."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes import client

from clinops import __version__
from clinops.specs.common import API_GROUP
from clinops_operator import k8s
from clinops_operator.builders.drift_monitor import DriftConfig
from clinops_operator.builders.model_deployment import ServingConfig
from clinops_operator.kfp_api import TrainingConfig
from clinops_operator.notices import Notices

FINALIZER = f"{API_GROUP}/finalizer"
DEFAULT_SERVING_IMAGE = f"clinops-platform:{__version__}"
DEFAULT_TRACKING_URI = "http://mlflow:5000"
DEFAULT_LAKE = "s3://clinops-lake"
# Kubernetes API workers: kopf runs the synchronous handlers on this many threads.
DEFAULT_WORKERS = 16
# How often a TrainingJob's KFP run is polled while it is under way.
DEFAULT_TRAINING_POLL_S = 15.0
# The drift job's Flink: the stream env's apache-flink pin, as the FlinkDeployment API spells versions.
DEFAULT_FLINK_VERSION = "v2_3"
DEFAULT_FLINK_JAR = "local:///opt/flink/opt/flink-python-2.3.0.jar"


@dataclass(frozen=True)
class Runtime:
    """What handlers share: the API client and the operator-wide defaults of the objects they build."""

    api: client.ApiClient
    serving: ServingConfig
    drift: DriftConfig
    # "auto": a ServiceMonitor whenever the apiserver serves the kind; "true"/"false" force it.
    service_monitors: str = "auto"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # A reconcile's status write, announced by (namespace, name) to the Deployment events waiting for it.
    status_written: Notices = field(default_factory=Notices)


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def serving_config(env: dict[str, str]) -> ServingConfig:
    return ServingConfig(
        image=env.get("CLINOPS_SERVING_IMAGE", DEFAULT_SERVING_IMAGE),
        image_pull_policy=env.get("CLINOPS_SERVING_IMAGE_PULL_POLICY", "IfNotPresent"),
        tracking_uri=env.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
        kafka_bootstrap=env.get("CLINOPS_KAFKA_BOOTSTRAP") or None,
        lake=env.get("CLINOPS_LAKE") or None,
        env_secret=env.get("CLINOPS_SERVING_ENV_SECRET") or None,
    )


def training_config(env: dict[str, str]) -> TrainingConfig:
    return TrainingConfig(
        kfp_endpoint=env.get("CLINOPS_KFP_ENDPOINT") or None,
        tracking_uri=env.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
        # Only a tracking server named on purpose is asked for outcomes: the default may not exist.
        read_outcomes="MLFLOW_TRACKING_URI" in env,
        lake_root=env.get("CLINOPS_LAKE") or DEFAULT_LAKE,
        poll_interval_s=float(env.get("CLINOPS_TRAINING_POLL_SECONDS", DEFAULT_TRAINING_POLL_S)),
    )


def drift_config(env: dict[str, str]) -> DriftConfig:
    return DriftConfig(
        image=env.get("CLINOPS_FLINK_IMAGE", env.get("CLINOPS_SERVING_IMAGE", DEFAULT_SERVING_IMAGE)),
        flink_version=env.get("CLINOPS_FLINK_VERSION", DEFAULT_FLINK_VERSION),
        jar_uri=env.get("CLINOPS_FLINK_JAR", DEFAULT_FLINK_JAR),
        python=env.get("CLINOPS_FLINK_PYTHON", DriftConfig.python),
        # Empty turns the reporter off.
        metrics_port=int(port)
        if (port := env.get("CLINOPS_FLINK_METRICS_PORT", str(DriftConfig.metrics_port)))
        else None,
        image_pull_policy=env.get("CLINOPS_SERVING_IMAGE_PULL_POLICY", "IfNotPresent"),
        service_account=env.get("CLINOPS_FLINK_SERVICE_ACCOUNT", "flink"),
        kafka_bootstrap=env.get("CLINOPS_KAFKA_BOOTSTRAP") or None,
        lake=env.get("CLINOPS_LAKE") or None,
        env_secret=env.get("CLINOPS_FLINK_ENV_SECRET") or env.get("CLINOPS_SERVING_ENV_SECRET") or None,
        s3_endpoint=env.get("CLINOPS_S3_ENDPOINT") or None,
        poll_interval_s=float(env.get("CLINOPS_DRIFT_POLL_SECONDS", 5.0)),
        resolve_interval_s=float(env.get("CLINOPS_DRIFT_RESOLVE_SECONDS", 60.0)),
    )


def runtime(memo: Any) -> Runtime:
    found = memo.get("runtime") if isinstance(memo, dict) else None
    if not isinstance(found, Runtime):
        raise kopf.TemporaryError("the operator has not finished starting", delay=1)
    return found


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    env = dict(os.environ)
    settings.persistence.finalizer = FINALIZER
    # Annotations, not status: the CRDs' structural schemas would prune kopf's own status fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = _flag(env.get("CLINOPS_OPERATOR_EVENTS"), True)
    # Warnings and failures become Events; at INFO every Deployment status change would post "Handler succeeded".
    settings.posting.level = logging.WARNING
    workers = int(env.get("CLINOPS_OPERATOR_WORKERS", DEFAULT_WORKERS))
    settings.execution.max_workers = workers
    # Scanning lists namespaces and watches CRDs cluster-wide: permissions a namespaced Role does not give. Without
    # it the CRDs must exist when the operator starts, which an install (CRDs first) guarantees.
    settings.scanning.disabled = not _flag(env.get("CLINOPS_OPERATOR_SCANNING"), False)
    peering = env.get("CLINOPS_OPERATOR_PEERING")
    # One replica needs no peering; several name a KopfPeering object so that only one of them handles.
    settings.peering.standalone = not peering
    if peering:
        settings.peering.name = peering
        settings.peering.mandatory = True
    memo["runtime"] = Runtime(
        # Handlers run on kopf's workers, the daemons' blocking calls on asyncio's default pool as well.
        api=k8s.connect(connections=2 * workers),
        serving=serving_config(env),
        drift=drift_config(env),
        service_monitors=env.get("CLINOPS_SERVICE_MONITORS", "auto").strip().lower(),
        training=training_config(env),
    )
    logger.info("Configured the operator (serving image %s)", memo["runtime"].serving.image)


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    # kopf's own readers look at the environment when they run; the client library's fixed its kubeconfig path
    # when it was imported.
    return kopf.login_with_service_account(settings=settings, **kwargs) or kopf.login_with_kubeconfig(
        settings=settings, **kwargs
    )


@kopf.on.cleanup()
def disconnect(memo: Any, **_: Any) -> None:
    found = memo.get("runtime")
    if isinstance(found, Runtime):
        found.api.close()
