"""All of the operator's Kubernetes API I/O: create-or-patch, reads, deletes, discovery and status writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from kopf import Logger
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from clinops.specs.common import API_GROUP

REQUEST_TIMEOUT_S = 30
STATUS_ATTEMPTS = 5
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
# Resource names of the kinds the operator writes; anything else is a programming error, not a guess at a plural.
_DELETE_OPTIONS = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
PLURALS = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "ServiceMonitor": "servicemonitors",
    "ModelDeployment": "modeldeployments",
    "TrainingJob": "trainingjobs",
    "Event": "events",
    "DriftMonitor": "driftmonitors",
    "FlinkDeployment": "flinkdeployments",
}


def connect(connections: int = 10) -> client.ApiClient:
    """A client with the pod's ServiceAccount in a cluster, else the kubeconfig (``KUBECONFIG`` or the default).

    ``connections``: one per worker thread, or every thread past the pool's size opens and drops its own.
    """
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def _path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{PLURALS[kind]}"
    return path if name is None else f"{path}/{name}"


def _call(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = JSON,
    query: list[tuple[str, str]] | None = None,
) -> Any:
    return api.call_api(
        path,
        method,
        query_params=query or [],
        header_params={"Accept": JSON, "Content-Type": content_type},
        body=body,
        response_type="object",
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _request_timeout=REQUEST_TIMEOUT_S,
    )


def apply(api: client.ApiClient, body: Mapping[str, Any], *, logger: Logger) -> dict[str, Any]:
    """Create the object, or patch it when it exists already (409): retries and restarts never duplicate it.

    The object as the apiserver stored it.
    """
    api_version, kind = body["apiVersion"], body["kind"]
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        created: dict[str, Any] = _call(api, "POST", _path(api_version, kind, namespace), body)
    except ApiException as exc:
        if exc.status != 409:
            raise
    else:
        logger.info("Created %s %s", kind, name)
        return created
    patched: dict[str, Any] = _call(
        api, "PATCH", _path(api_version, kind, namespace, name), body, content_type=MERGE_PATCH
    )
    return patched


def read(api: client.ApiClient, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = _call(api, "GET", _path(api_version, kind, namespace, name))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def delete(api: client.ApiClient, api_version: str, kind: str, namespace: str, name: str, *, logger: Logger) -> bool:
    """Delete the object if it exists (404 is success too); whether there was one."""
    try:
        _call(api, "DELETE", _path(api_version, kind, namespace, name), _DELETE_OPTIONS)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    logger.info("Deleted %s %s", kind, name)
    return True


def serves(api: client.ApiClient, group_version: str, kind: str) -> bool:
    """Whether the apiserver serves ``kind`` in ``group_version`` (discovery: any authenticated user may ask)."""
    try:
        resources = _call(api, "GET", f"/apis/{group_version}")
    except ApiException as exc:
        if exc.status in (404, 503):
            return False
        raise
    return any(resource.get("kind") == kind for resource in resources.get("resources", []))


def update_status(
    api: client.ApiClient,
    kind: str,
    namespace: str,
    name: str,
    compute: Callable[[Mapping[str, Any]], dict[str, Any] | None],
    *,
    api_version: str = f"{API_GROUP}/v1alpha1",
) -> bool:
    """Write ``compute(current object)`` as the status, guarded by the resourceVersion it was computed from.

    ``compute`` reads whatever else it needs after the object was read; the guard then makes the last write the
    one computed from the newest reads, however many writers race. None from ``compute`` writes nothing. Whether
    a status was written.
    """
    path = _path(api_version, kind, namespace, name)
    for _ in range(STATUS_ATTEMPTS):
        current = read(api, api_version, kind, namespace, name)
        if current is None:
            return False
        status = compute(current)
        # A merge patch drops null fields, so the stored status never holds them.
        if status is None or {key: value for key, value in status.items() if value is not None} == current.get(
            "status"
        ):
            return False
        patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "status": status}
        try:
            _call(api, "PATCH", f"{path}/status", patch, content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status == 409:
                continue
            raise
        return True
    return False
