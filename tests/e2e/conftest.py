"""The e2e tier's cluster: a real control plane with two kwok nodes, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
