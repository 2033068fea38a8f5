"""The e2e tier's cluster: a real control plane with two kwok nodes, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from tests.e2e import kfp_fake
from tests.e2e.helm import Helm
from tests.e2e.kfp_fake import KfpFake
from tests.e2e.registry import Registry


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver (RBAC, token auth), controller-manager, scheduler and kwok, from `make controlplane`."""
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def third_party_crds(control_plane: ControlPlane) -> list[str]:
    """FlinkDeployment, ServiceMonitor and PrometheusRule CRDs from their publishers, installed and Established."""
    return crds.install(control_plane, crds.third_party_crds())


@pytest.fixture(scope="session")
def chart_crds(control_plane: ControlPlane) -> list[str]:
    """Every third-party CRD the clinops chart renders resources of (Strimzi's generated from its API classes, the
    prometheus-operator's, FlinkDeployment), installed and Established."""
    return crds.install(control_plane, crds.chart_crds())


@pytest.fixture(scope="session")
def kfp_api() -> Iterator[KfpFake]:
    """The loopback fake of the KFP REST API (its real server needs Argo and MySQL), recording every submission."""
    with kfp_fake.serve() as fake:
        yield fake


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    import mlflow

    before = mlflow.get_tracking_uri()
    yield Registry(tmp_path)
    # The fluent API's tracking URI is process-wide: later tests in this worker must not write to this one.
    mlflow.set_tracking_uri(before)


@pytest.fixture
def helm(control_plane: ControlPlane, tmp_path: Path) -> Helm:
    """The bench's helm on the control plane, its caches and settings in the test's directory."""
    return Helm(control_plane, tmp_path)


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """An admin client of the control plane; modules that share one across their tests define their own."""
    with config.new_client_from_config(config_file=str(control_plane.kubeconfig)) as api_client:
        yield api_client
