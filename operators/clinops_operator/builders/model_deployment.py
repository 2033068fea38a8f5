"""A ModelDeployment's children: the model server's ConfigMap, Deployment, Service, HPA, PDB and ServiceMonitor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from clinops.specs.common import API_VERSION
from clinops.specs.model_deployment import ModelDeploymentSpec
from clinops.specs.status import ConditionStatus, DeploymentPhase
from clinops_operator.builders import common
from clinops_operator.builders.common import (
    child_name,
    condition,
    labels,
    restricted_container_security,
    restricted_pod_security,
    selector_labels,
)

APP = "clinops-model-server"
COMPONENT = "model-server"
SPEC_ROLE = "spec"
SPEC_DIR = "/etc/clinops/deployment"
SPEC_FILE = "modeldeployment.yaml"
CONTAINER = "server"
PORT_NAME = "http"
# uvicorn's own graceful shutdown after the drain (clinops.serving.server): the pod must outlive both.
SERVER_SHUTDOWN_SECONDS = 30


@dataclass(frozen=True)
class ServingConfig:
    """What the operator's environment decides for every model server (the spec says what to serve)."""

    image: str
    tracking_uri: str
    image_pull_policy: str = "IfNotPresent"
    kafka_bootstrap: str | None = None
    lake: str | None = None
    # A Secret whose keys become the server's environment: object-store credentials for MLflow's artifacts.
    env_secret: str | None = None
    port: int = 8080
    run_as_user: int = 10001
    resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    )
    scrape_interval: str = "30s"


def _labels(name: str) -> dict[str, str]:
    return labels(name=APP, instance=name, component=COMPONENT)


def _selector(name: str) -> dict[str, str]:
    return selector_labels(name=APP, instance=name, component=COMPONENT)


def _meta(name: str, owner: str) -> dict[str, Any]:
    return {"name": name, "labels": _labels(owner)}


def spec_document(*, name: str, spec: ModelDeploymentSpec) -> str:
    """The ModelDeployment as the server reads it from its mounted file (and re-reads on every reload tick)."""
    document = {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return yaml.safe_dump(document, sort_keys=False)


def config_map(*, name: str, spec: ModelDeploymentSpec) -> dict[str, Any]:
    # A file rather than arguments: the server notices a new canary split or log setting without a restart.
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(child_name(name, SPEC_ROLE), name),
        "data": {SPEC_FILE: spec_document(name=name, spec=spec)},
    }


def _environment(config: ServingConfig) -> list[dict[str, str]]:
    env = {
        "MLFLOW_TRACKING_URI": config.tracking_uri,
        # The root filesystem is read-only: every cache and download goes to the /tmp volume.
        "HOME": "/tmp",
        "CLINOPS_HOME": "/tmp/clinops",
    }
    if config.kafka_bootstrap:
        env["CLINOPS_KAFKA_BOOTSTRAP"] = config.kafka_bootstrap
    if config.lake:
        env["CLINOPS_LAKE"] = config.lake
    return [{"name": key, "value": value} for key, value in env.items()]


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(*, name: str, spec: ModelDeploymentSpec, config: ServingConfig) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "args": [
            "serve",
            "--file",
            f"{SPEC_DIR}/{SPEC_FILE}",
            "--host",
            "0.0.0.0",
            "--port",
            str(config.port),
        ],
        "command": ["clinops"],
        "env": _environment(config),
        "ports": [{"name": PORT_NAME, "containerPort": config.port, "protocol": "TCP"}],
        "livenessProbe": _probe("/health/live", period=10, failures=3),
        # Not ready until a model is loaded, and again while draining on SIGTERM.
        "readinessProbe": _probe("/health/ready", period=5, failures=1),
        "resources": {kind: dict(amounts) for kind, amounts in config.resources.items()},
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if config.env_secret:
        container["envFrom"] = [{"secretRef": {"name": config.env_secret}}]
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(child_name(name), name),
        "spec": {
            "selector": {"matchLabels": _selector(name)},
            # A new pod must be Ready before an old one goes: capacity never dips during a rollout.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": _labels(name)},
                "spec": {
                    # The server never calls the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": int(spec.shutdown_grace_seconds) + SERVER_SHUTDOWN_SECONDS,
                    "securityContext": restricted_pod_security(config.run_as_user),
                    "containers": [container],
                    "volumes": [
                        {"name": "spec", "configMap": {"name": child_name(name, SPEC_ROLE)}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    # With autoscaling the HPA owns the replica count; writing it here would fight the HPA on every reconcile.
    if spec.autoscaling is None:
        body["spec"]["replicas"] = spec.replicas
    return body


def service(*, name: str, config: ServingConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(child_name(name), name),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(name),
            "ports": [{"name": PORT_NAME, "port": config.port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def horizontal_pod_autoscaler(*, name: str, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    scaling = spec.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(child_name(name), name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(name)},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def pod_disruption_budget(*, name: str) -> dict[str, Any]:
    # maxUnavailable rather than minAvailable: a single replica must not block a node drain forever.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(child_name(name), name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(name)}},
    }


def service_monitor(*, name: str, config: ServingConfig) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(child_name(name), name),
        "spec": {
            "selector": {"matchLabels": _selector(name)},
            "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": config.scrape_interval}],
        },
    }


def children(
    *, name: str, spec: ModelDeploymentSpec, config: ServingConfig, service_monitors: bool
) -> list[dict[str, Any]]:
    """Every child the spec asks for, in apply order (the mounted ConfigMap before the pods that mount it)."""
    built = [
        config_map(name=name, spec=spec),
        deployment(name=name, spec=spec, config=config),
        service(name=name, config=config),
        pod_disruption_budget(name=name),
    ]
    scaler = horizontal_pod_autoscaler(name=name, spec=spec)
    if scaler is not None:
        built.append(scaler)
    if service_monitors:
        built.append(service_monitor(name=name, config=config))
    return built


def absent_children(*, name: str, spec: ModelDeploymentSpec) -> list[tuple[str, str, str]]:
    """``(apiVersion, kind, name)`` of children an earlier spec may have asked for and this one does not."""
    if spec.autoscaling is None:
        return [("autoscaling/v2", "HorizontalPodAutoscaler", child_name(name))]
    return []


def url(*, name: str, namespace: str, config: ServingConfig) -> str:
    return f"http://{child_name(name)}.{namespace}.svc:{config.port}"


def template_observed(deployment: Mapping[str, Any]) -> bool:
    """Whether the Deployment controller has seen this copy's template: until it has, the copy says nothing about
    the rollout, and the controller's next status write is an event of its own."""
    observed = (deployment.get("status") or {}).get("observedGeneration") or 0
    return int(observed) >= int(deployment["metadata"].get("generation") or 0)


def _rollout(deployment: Mapping[str, Any] | None) -> tuple[bool, int, str]:
    """Whether every desired pod runs the current template and is Ready, the Ready count and why not."""
    if deployment is None:
        return False, 0, "the Deployment does not exist yet"
    observed = deployment.get("status") or {}
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    ready = int(observed.get("readyReplicas") or 0)
    updated = int(observed.get("updatedReplicas") or 0)
    total = int(observed.get("replicas") or 0)
    if not template_observed(deployment):
        return False, ready, "the Deployment controller has not seen the latest template yet"
    if updated < desired or total > desired:
        return False, ready, f"rolling out: {updated} of {desired} replicas updated, {total} running"
    if ready < desired:
        return False, ready, f"{ready} of {desired} replicas ready"
    return True, ready, f"{ready} of {desired} replicas ready"


def status(
    *,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    config: ServingConfig,
    deployment: Mapping[str, Any] | None,
    observed_generation: int | None,
    previous_conditions: list[dict[str, Any]],
    now: str,
) -> dict[str, Any]:
    """The status of a valid ModelDeployment as its Deployment shows it."""
    ready, ready_replicas, message = _rollout(deployment)
    if ready:
        phase, reason = DeploymentPhase.READY, "ReplicasReady"
    elif deployment is None:
        phase, reason = DeploymentPhase.PENDING, "DeploymentMissing"
    else:
        phase, reason = DeploymentPhase.PROGRESSING, "ReplicasNotReady"
    canary = spec.canary
    return {
        "phase": phase.value,
        "url": url(name=name, namespace=namespace, config=config),
        # A pinned version is known here; an alias resolves inside the server as the registry moves it.
        "servingVersion": None if spec.model.version is None else str(spec.model.version),
        "canaryVersion": None if canary is None or canary.version is None else str(canary.version),
        "readyReplicas": ready_replicas,
        "conditions": [
            condition(
                type="Ready",
                status=ConditionStatus.TRUE if ready else ConditionStatus.FALSE,
                reason=reason,
                message=message,
                generation=observed_generation,
                now=now,
                previous=previous_conditions,
            )
        ],
        "observedGeneration": observed_generation,
    }


def failed_status(
    *, problem: str, generation: int | None, previous_conditions: list[dict[str, Any]], now: str
) -> dict[str, Any]:
    """The status of a ModelDeployment whose spec the apiserver admitted but the operator cannot serve."""
    return common.failed_status(
        phase=DeploymentPhase.FAILED.value,
        problem=problem,
        reason="InvalidSpec",
        generation=generation,
        previous_conditions=previous_conditions,
        now=now,
    )
