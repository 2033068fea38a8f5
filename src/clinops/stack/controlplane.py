"""A Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager, scheduler and kwok's fake nodes."""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from clinops.stack.fetch import cache_root
from clinops.stack.process import READY_TIMEOUT_S, ManagedProcess, StackError, free_port, http_ok, log_tail, poll_until

VERSIONS_FILE = Path(__file__).resolve().parents[3] / "scripts" / "k8s" / "versions.env"
# Client rate limits of the controller-manager and the scheduler: high enough that the apiserver, not a client-side
# token bucket, decides how fast a burst of objects settles.
CLIENT_QPS, CLIENT_BURST = 1000, 2000
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "helm")
SERVICE_CIDR = "10.96.0.0/12"
# Apart from the service range, so a fake pod IP never looks like a Service's.
POD_CIDR = "10.244.0.0/16"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
ADMIN_USER = "clinops-admin"
REQUEST_TIMEOUT_S = 10.0


def pinned_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """The pins of scripts/k8s/versions.env, which `make controlplane` builds."""
    if not path.is_file():
        raise StackError(f"{path} not found: the control plane's pins are read from the clinops source tree")
    versions = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            versions[key.strip()] = value.strip()
    return versions


def binaries_dir(version: str | None = None) -> Path:
    """The cached binaries of the pinned version; building them takes long, so it is `make controlplane`'s job."""
    version = version or pinned_versions()["KUBERNETES_VERSION"]
    bin_dir = cache_root() / f"k8s-{version}" / "bin"
    missing = [name for name in BINARIES if not (bin_dir / name).is_file()]
    if missing:
        raise StackError(f"{', '.join(missing)} missing from {bin_dir}: run `make controlplane` first")
    return bin_dir


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    *,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Backdated: the servers and clients may disagree on "now" by a clock tick.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


# The components' own serving certificates are self-signed in their cert dirs: health is all that is asked of them.
_UNVERIFIED = ssl.create_default_context()
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


class ControlPlane:
    """An envtest-style cluster in ``run_dir``: RBAC on, token auth, two kwok nodes that make scheduled pods Ready.

    :meth:`start` returns once every component answers its health endpoint, the nodes are Ready and the default
    ServiceAccount exists (so pods can be created at once); :attr:`kubeconfig` holds the admin credentials.
    """

    def __init__(self, run_dir: Path, *, nodes: int = 2, version: str | None = None) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.version = version or pinned_versions()["KUBERNETES_VERSION"]
        self.node_names = tuple(f"kwok-node-{index}" for index in range(nodes))
        self.pki = self.run_dir / "pki"
        self.logs = self.run_dir / "logs"
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_urlsafe(32)
        self.etcd_url = f"http://127.0.0.1:{free_port()}"
        self._processes: list[ManagedProcess] = []
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"ControlPlane({self.server!r}, version={self.version!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return bool(self._processes) and all(process.running for process in self._processes)

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.crt"

    def binary(self, name: str) -> Path:
        return binaries_dir(self.version) / name

    def start(self) -> None:
        bin_dir = binaries_dir(self.version)
        try:
            self._write_credentials()
            self._start_etcd(bin_dir)
            self._start_apiserver(bin_dir)
            self._start_controllers(bin_dir)
            self._start_kwok(bin_dir)
            self._create_nodes()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Reverse order: the controllers never see their apiserver vanish, nor the apiserver its etcd.
        while self._processes:
            self._processes.pop().stop()

    def _write_credentials(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca = _certificate("clinops-bench-ca", ca_key)
        serving_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # The in-cluster names and the Service IP, so a client inside a pod would verify the same certificate.
        service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
        hosts = ("127.0.0.1", "localhost", service_ip, "kubernetes", "kubernetes.default", "kubernetes.default.svc")
        serving = _certificate("kube-apiserver", serving_key, issuer=(ca, ca_key), hosts=hosts)
        service_account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        files = {
            "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
            "ca.key": _pem_key(ca_key),
            "apiserver.crt": serving.public_bytes(serialization.Encoding.PEM),
            "apiserver.key": _pem_key(serving_key),
            "sa.key": _pem_key(service_account_key),
            "sa.pub": service_account_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "tokens.csv": f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'.encode(),
        }
        for name, content in files.items():
            path = self.pki / name
            path.write_bytes(content)
            path.chmod(0o600)
        self.write_kubeconfig(self.kubeconfig, ADMIN_USER, self.admin_token)

    def write_kubeconfig(self, path: Path, user: str, token: str) -> Path:
        """A kubeconfig that reaches this apiserver as ``user`` with a bearer ``token`` (a ServiceAccount's, say)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "bench", "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": user}}],
            "current-context": "bench",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def _launch(self, name: str, command: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, command, self.logs / f"{name}.log")
        process.start()
        self._processes.append(process)
        return process

    def _start_etcd(self, bin_dir: Path) -> None:
        peer = free_port()
        etcd = self._launch(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=bench",
                f"--data-dir={self.run_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=bench=http://127.0.0.1:{peer}",
                # A throwaway store: an fsync per write only slows the bench down.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        etcd.wait_until(lambda: self._http_ok(f"{self.etcd_url}/health"), "a healthy etcd")

    def _start_apiserver(self, bin_dir: Path) -> None:
        apiserver = self._launch(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                "--advertise-address=127.0.0.1",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--etcd-servers={self.etcd_url}",
                f"--tls-cert-file={self.pki / 'apiserver.crt'}",
                f"--tls-private-key-file={self.pki / 'apiserver.key'}",
                f"--client-ca-file={self.ca_file}",
                f"--token-auth-file={self.pki / 'tokens.csv'}",
                # The front-proxy settings the controllers' delegated authentication reads back from kube-system, as
                # kubeadm sets them; without them both log a missing CA bundle again and again.
                f"--requestheader-client-ca-file={self.ca_file}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={self.pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # The `kubernetes` Service cannot point at a loopback address, and nothing in the bench dials it.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.run_dir / 'apiserver'}",
                "--profiling=false",
            ],
        )
        apiserver.wait_until(lambda: self._api_ok("/readyz"), f"/readyz at {self.server}")

    def _component_kubeconfig_flags(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
        ]

    def _start_controllers(self, bin_dir: Path) -> None:
        manager_port, scheduler_port = free_port(), free_port()
        manager = self._launch(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                *self._component_kubeconfig_flags(),
                "--bind-address=127.0.0.1",
                f"--secure-port={manager_port}",
                f"--cert-dir={self.run_dir / 'controller-manager'}",
                "--controllers=*",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.pki / 'sa.key'}",
                # Each controller acts as its own ServiceAccount, so RBAC decides for it as it would in a cluster.
                "--use-service-account-credentials=true",
                f"--root-ca-file={self.ca_file}",
                f"--cluster-signing-cert-file={self.ca_file}",
                f"--cluster-signing-key-file={self.pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # The client's default (20 requests/s) made the ReplicaSet controller, which writes a pod and an
                # Event per replica, the pace-setter of every rollout here (about 9 pods/s); kwokctl lifts it too.
                f"--kube-api-qps={CLIENT_QPS}",
                f"--kube-api-burst={CLIENT_BURST}",
            ],
        )
        scheduler = self._launch(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                *self._component_kubeconfig_flags(),
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler_port}",
                f"--cert-dir={self.run_dir / 'scheduler'}",
                "--leader-elect=false",
                # Deprecated in favour of a config file, still honoured: binding pods at 50 requests/s otherwise.
                f"--kube-api-qps={CLIENT_QPS}",
                f"--kube-api-burst={CLIENT_BURST}",
            ],
        )
        manager.wait_until(lambda: self._http_ok(f"https://127.0.0.1:{manager_port}/healthz"), "a healthy manager")
        scheduler.wait_until(lambda: self._http_ok(f"https://127.0.0.1:{scheduler_port}/readyz"), "a ready scheduler")

    def _start_kwok(self, bin_dir: Path) -> None:
        stages = bin_dir.parent / "kwok-stages.yaml"
        if not stages.is_file():
            raise StackError(f"{stages} missing: run `make controlplane` first")
        port = free_port()
        kwok = self._launch(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={stages}",
                # Only the nodes made here: a node some test adds for another purpose keeps its own status.
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{port}",
                # Heartbeats as node Leases: without them the node lifecycle controller marks every node NotReady
                # after its grace period (40 s) and kwok never makes the evicted pods Ready again.
                "--node-lease-duration-seconds=40",
            ],
        )
        kwok.wait_until(lambda: self._http_ok(f"http://127.0.0.1:{port}/healthz"), "a healthy kwok")

    def _create_nodes(self) -> None:
        for name in self.node_names:
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                },
            }
            self.request("POST", "/api/v1/nodes", node)

    def _nodes_ready(self) -> bool:
        nodes = self.request("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
        ready = {
            node["metadata"]["name"]
            for node in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))
        }
        return ready >= set(self.node_names)

    def _default_service_account(self) -> bool:
        return self._api_ok("/api/v1/namespaces/default/serviceaccounts/default")

    def _wait_ready(self) -> None:
        self.wait_for(self._nodes_ready, "Ready kwok nodes")
        # Pods are refused until the ServiceAccount controller has made the namespace's default account.
        self.wait_for(self._default_service_account, "default ServiceAccount")

    # --- talking to the apiserver -----------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        return self._ssl

    def _http_ok(self, url: str) -> bool:
        return http_ok(url, _UNVERIFIED if url.startswith("https") else None)

    def _api_ok(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except StackError:
            return False
        return True

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, token: str | None = None) -> Any:
        """One call to the apiserver as the admin (or ``token``); the decoded JSON answer, StackError otherwise."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.admin_token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S, context=self._context()) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise StackError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:500]}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise StackError(f"{method} {path}: {exc}") from exc
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode(errors="replace")

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise StackError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll ``ready`` until it holds; fail with every component's log tail on deadline."""
        if not poll_until(ready, timeout):
            raise StackError(f"no {what} after {timeout:.0f}s:\n{log_tail(*(p.log for p in self._processes))}")
