"""Pre-made volumes for the chart's claims: the bench has no storage provisioner, so a test brings its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes import client


@contextmanager
def local_volumes(api: client.ApiClient, root: Path, *, count: int, size: str = "1Gi") -> Iterator[str]:
    """A StorageClass without a provisioner and ``count`` hostPath volumes of it; yields the class's name.

    Binding is immediate, so the controller-manager binds each claim of the class to one of these volumes and the
    scheduler places the pod. Volumes and class are removed on exit, whatever state the claims left them in.
    """
    name = f"bench-local-{uuid.uuid4().hex[:6]}"
    storage = client.StorageV1Api(api)
    core = client.CoreV1Api(api)
    storage.create_storage_class(
        client.V1StorageClass(
            metadata=client.V1ObjectMeta(name=name),
            provisioner="kubernetes.io/no-provisioner",
            volume_binding_mode="Immediate",
            reclaim_policy="Retain",
        )
    )
    volumes = [f"{name}-{index}" for index in range(count)]
    try:
        for volume in volumes:
            path = root / volume
            path.mkdir(parents=True)
            core.create_persistent_volume(
                client.V1PersistentVolume(
                    metadata=client.V1ObjectMeta(name=volume),
                    spec=client.V1PersistentVolumeSpec(
                        capacity={"storage": size},
                        access_modes=["ReadWriteOnce"],
                        storage_class_name=name,
                        # Released, not recycled, when a claim goes: nothing on the bench can scrub it.
                        persistent_volume_reclaim_policy="Retain",
                        host_path=client.V1HostPathVolumeSource(path=str(path), type="Directory"),
                    ),
                )
            )
        yield name
    finally:
        for volume in volumes:
            try:
                core.delete_persistent_volume(volume)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
        storage.delete_storage_class(name)
