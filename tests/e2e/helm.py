"""The bench's helm against the fixture control plane, and the namespaces the chart tests install into."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from kubernetes import client

from clinops.stack.controlplane import ControlPlane

ROOT = Path(__file__).parents[2]
CHART, CRDS_CHART = ROOT / "charts" / "clinops", ROOT / "charts" / "clinops-crds"


class Helm:
    def __init__(self, plane: ControlPlane, home: Path) -> None:
        self.plane = plane
        # Helm's caches and settings in the test's directory, never the user's.
        self.env = {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
        # HOME too: kubectl's discovery cache goes to $HOME/.kube, or the working directory when HOME is unset.
        self.env |= {"PATH": "/usr/bin:/bin", "HOME": str(home)}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.plane.binary("helm")), "--kubeconfig", str(self.plane.kubeconfig), *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=300)
        if check:
            assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done


def restricted_namespace(api: client.ApiClient) -> str:
    """A namespace that admits only pods meeting the restricted Pod Security Standard."""
    name = f"platform-{uuid.uuid4().hex[:6]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name
