"""The e2e tier's cluster: a real control plane with two kwok nodes, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane


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
