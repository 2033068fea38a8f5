"""The ModelDeployment operator under a burst, against the floor the cluster itself sets, in one run.

One control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok's fake nodes, enough of them for
every pod of both sides), two namespaces. ``--count`` ModelDeployments with the spec of
manifests/samples/model-deployment.yaml are created at once from a pool of ``--workers`` threads:

- ours: the ``clinops-operator`` console script in a process of its own (service monitors off, no liveness
  endpoint) watches its namespace and reconciles each one into its children, then reports the rollout in status.
  A CR's clock starts when its create call returned and stops when every child has been seen and its
  ``status.phase`` is Ready (the builder's Ready: the Deployment's template observed, every replica updated and
  Ready).
- the peer, the floor: the very children the operator would make (its own pure builder, with the ServingConfig
  of an empty environment), applied from this process with the operator's own create-or-patch call over a pool
  of the same size. A CR's clock starts when its first child is sent and stops when every child has been seen
  and the Deployment reports ``readyReplicas == replicas``.

Both sides see their objects through watches of the same kinds, started before the first create; each side is
warmed up by one object outside the measurement (for ours that is also the readiness check: the operator has
handled a first object). The operator's RSS is sampled from /proc every 0.2 s from its start to its stop.

Printed, one JSON line each: per-CR p50/p99/max and the total wall time (first create sent to the last CR done)
of both sides, the ratios ours/peer, the operator's peak RSS and whether the targets hold (p50 < 1 s, every CR
done within 60 s, RSS <= 150 MiB); then where our per-CR time goes (first child seen, every child seen,
Deployment ready, Ready reported in status), watch events per CR and the operator's CPU time and log.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from clinops.specs.model_deployment import ModelDeploymentSpec
from clinops.stack import crds
from clinops.stack.controlplane import ControlPlane
from clinops.stack.process import ManagedProcess, poll_until
from clinops_operator import k8s
from clinops_operator.builders.common import parse_spec
from clinops_operator.builders.model_deployment import ServingConfig, children
from clinops_operator.settings import serving_config
from timing import best_of

ROOT = Path(__file__).resolve().parents[1]
CRDS = ROOT / "manifests" / "crds"
SAMPLE = ROOT / "manifests" / "samples" / "model-deployment.yaml"
OPERATOR = Path(sys.executable).parent / "clinops-operator"
GROUP, VERSION, PLURAL = "clinops.io", "v1alpha1", "modeldeployments"
INSTANCE = "app.kubernetes.io/instance"
# The kinds a ModelDeployment without autoscaling or ServiceMonitor owns, and where each is listed.
CHILD_PATHS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
}
CR_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}"
WARMUP = "warmup"
# kwok's nodes advertise 110 pods each; a few are left for the pods of objects in flight.
PODS_PER_NODE = 100
RSS_INTERVAL_S = 0.2
WATCH_WINDOW_S = 5
TARGET_P50_S, TARGET_ALL_S, TARGET_RSS_MIB = 1.0, 60.0, 150.0
QUIET = logging.getLogger("bench_operator.peer")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def connect(kubeconfig: Path, connections: int) -> client.ApiClient:
    """A client whose connection pool holds ``connections``: a smaller pool drops and re-opens TLS connections."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def _get(api: client.ApiClient, path: str) -> dict[str, Any]:
    found: dict[str, Any] = api.call_api(
        path,
        "GET",
        header_params={"Accept": "application/json"},
        response_type="object",
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _request_timeout=30,
    )
    return found


def apiserver_requests(api: client.ApiClient) -> Counter[str]:
    """Requests the apiserver has served so far, by verb (watches excluded: they are long-lived streams)."""
    response = api.call_api(
        "/metrics",
        "GET",
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=30,
    )
    served: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.data.decode()):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            verb = sample.labels.get("verb", "")
            if sample.name == "apiserver_request_total" and verb not in ("WATCH", "CONNECT"):
                served[verb] += int(sample.value)
    return served


def requests_per_cr(before: Counter[str], after: Counter[str], count: int) -> dict[str, float]:
    """Per CR and verb, everything the apiserver served in between: both sides share the controllers' share."""
    spent = after - before
    per_verb = {verb: round(spent[verb] / count, 1) for verb in sorted(spent)}
    return {"all": round(sum(spent.values()) / count, 1), **per_verb}


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-delimited documents of a streamed watch response, as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from (line for line in lines if line)


class Watch(threading.Thread):
    """Every event of one collection from now on, handed to ``handle(type, object, seen_at)`` from its thread."""

    def __init__(self, api: client.ApiClient, path: str, handle: Callable[[str, dict[str, Any], float], None]):
        super().__init__(name=f"watch {path}", daemon=True)
        self.api = api
        self.path = path
        self.handle = handle
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self._version = ""

    def _list(self) -> None:
        listed = _get(self.api, self.path)
        seen_at = time.monotonic()
        for item in listed.get("items") or []:
            self.handle("ADDED", item, seen_at)
        self._version = str(listed["metadata"]["resourceVersion"])

    def begin(self) -> None:
        """List once (what exists now is not measured, but a handler may count it) and watch from there."""
        self._list()
        self.start()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self._stream()
        except BaseException as exc:  # reported by check(): a silent watch would look like a slow operator
            self.failure = exc

    def _stream(self) -> None:
        query = [
            ("watch", "true"),
            ("resourceVersion", self._version),
            ("allowWatchBookmarks", "true"),
            # The server ends each stream after this long, so stop() never waits on a quiet collection for long.
            ("timeoutSeconds", str(WATCH_WINDOW_S)),
        ]
        response = self.api.call_api(
            self.path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=(10, WATCH_WINDOW_S + 30),
        )
        try:
            for line in _lines(response):
                seen_at = time.monotonic()
                event = json.loads(line)
                kind, body = event["type"], event["object"]
                if kind == "ERROR":
                    if body.get("code") == 410:  # the version left the watch cache: list again
                        self._list()
                        return
                    raise RuntimeError(f"watch {self.path}: {body}")
                self._version = str(body["metadata"]["resourceVersion"])
                if kind != "BOOKMARK":
                    self.handle(kind, body, seen_at)
        finally:
            response.release_conn()

    def stop(self) -> None:
        if self.ident is None:  # never begun
            return
        self.stopping.set()
        self.join(timeout=WATCH_WINDOW_S + 40)

    def check(self) -> None:
        if self.failure is not None:
            raise RuntimeError(f"watch {self.path} failed") from self.failure


class Timeline:
    """When each measured CR's clock started and when its children, its Deployment and its status got there."""

    def __init__(self, names: list[str], *, status_ready: bool) -> None:
        self.names = set(names)
        # Ours: Ready is what the CR's status says; the peer has no CR, its Deployment's readiness is the end.
        self.status_ready = status_ready
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}
        self.seen: dict[str, dict[str, float]] = {name: {} for name in names}
        self.deployment_ready: dict[str, float] = {}
        self.status_ready_at: dict[str, float] = {}
        self.cr_events: Counter[str] = Counter()
        self.done_at: dict[str, float] = {}

    def start(self, name: str, at: float) -> None:
        with self.lock:
            self.started[name] = at

    def _settle(self, name: str) -> None:
        children_at = self.seen[name]
        ready = self.status_ready_at if self.status_ready else self.deployment_ready
        if name in self.done_at or name not in ready or len(children_at) < len(CHILD_PATHS):
            return
        self.done_at[name] = max(ready[name], *children_at.values())

    def child(self, kind: str, _type: str, body: dict[str, Any], seen_at: float) -> None:
        name = (body["metadata"].get("labels") or {}).get(INSTANCE)
        if name not in self.names:
            return
        with self.lock:
            self.seen[name].setdefault(kind, seen_at)
            if kind == "Deployment" and name not in self.deployment_ready:
                spec, status = body.get("spec") or {}, body.get("status") or {}
                if int(status.get("readyReplicas") or 0) == int(spec.get("replicas", 1)):
                    self.deployment_ready[name] = seen_at
            self._settle(name)

    def custom_object(self, _type: str, body: dict[str, Any], seen_at: float) -> None:
        name = body["metadata"]["name"]
        if name not in self.names:
            return
        with self.lock:
            self.cr_events[name] += 1
            if (body.get("status") or {}).get("phase") == "Ready":
                self.status_ready_at.setdefault(name, seen_at)
            self._settle(name)

    def done(self) -> bool:
        with self.lock:
            return len(self.done_at) == len(self.names)

    def dump(self, path: Path, began: float) -> None:
        """Every CR's moments, in seconds from the first create sent, for a closer look than the percentiles."""

        def since(at: float | None) -> float | None:
            return None if at is None else round(at - began, 3)

        moments = {
            name: {
                "started": since(self.started.get(name)),
                **{kind: since(at) for kind, at in sorted(self.seen[name].items())},
                "deployment_ready": since(self.deployment_ready.get(name)),
                "status_ready": since(self.status_ready_at.get(name)),
                "done": since(self.done_at.get(name)),
            }
            for name in sorted(self.names)
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(moments, indent=1))

    def watches(self, api: client.ApiClient, namespace: str) -> list[Watch]:
        found = [
            Watch(api, path.format(ns=namespace), functools.partial(self.child, kind))
            for kind, path in CHILD_PATHS.items()
        ]
        if self.status_ready:
            found.append(Watch(api, CR_PATH.format(ns=namespace), self.custom_object))
        return found


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p99_s": None, "max_s": None}
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50_s": round(float(p50), 3), "p99_s": round(float(p99), 3), "max_s": round(max(values), 3)}


class Rss(threading.Thread):
    """The highest VmRSS of one process, sampled every RSS_INTERVAL_S until stopped or the process is gone."""

    def __init__(self, pid: int) -> None:
        super().__init__(name=f"rss {pid}", daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.peak_kib = 0
        self.stopping = threading.Event()

    def sample(self) -> None:
        try:
            text = self.status.read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(RSS_INTERVAL_S)

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        return self.peak_kib / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_namespace(plane: ControlPlane, core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def has_default_account() -> bool:
        # Pods are refused until the controller-manager has made the namespace's default ServiceAccount.
        names = [account.metadata.name for account in core.list_namespaced_service_account(name).items]
        return "default" in names

    plane.wait_for(has_default_account, f"the default ServiceAccount of {name}")


def model_deployment(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name}, "spec": spec}


def peer_children(name: str, namespace: str, spec: ModelDeploymentSpec, serving: ServingConfig) -> list[dict[str, Any]]:
    built = children(name=name, spec=spec, config=serving, service_monitors=False)
    for child in built:
        child["metadata"]["namespace"] = namespace
    return built


def burst(workers: int, names: list[str], task: Callable[[str], None]) -> float:
    """Every task submitted at once to a pool of ``workers``; the seconds until the last call returned."""

    def submit_all() -> int:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="create") as pool:
            futures = [pool.submit(task, name) for name in names]
            for future in futures:
                future.result()
        return len(futures)

    seconds, _ = best_of(1, submit_all)
    return seconds


def side_result(timeline: Timeline, began: float, calls_s: float) -> dict[str, Any]:
    latencies = [timeline.done_at[n] - timeline.started[n] for n in timeline.names if n in timeline.done_at]
    total = max(timeline.done_at.values()) - began if timeline.done() else None
    return {
        **percentiles(latencies),
        "total_s": None if total is None else round(total, 3),
        "not_done": len(timeline.names) - len(latencies),
        "create_calls_s": round(calls_s, 3),
    }


def breakdown(timeline: Timeline) -> dict[str, Any]:
    """Per-CR medians and p99s of each step, measured from the CR's start."""
    steps: dict[str, list[float]] = {"first_child": [], "all_children": [], "deployment_ready": []}
    status_lag: list[float] = []
    for name in timeline.names:
        start, seen = timeline.started.get(name), timeline.seen[name]
        if start is None:
            continue
        if seen:
            steps["first_child"].append(min(seen.values()) - start)
        if len(seen) == len(CHILD_PATHS):
            steps["all_children"].append(max(seen.values()) - start)
        if name in timeline.deployment_ready:
            steps["deployment_ready"].append(timeline.deployment_ready[name] - start)
            if name in timeline.status_ready_at:
                status_lag.append(timeline.status_ready_at[name] - timeline.deployment_ready[name])
    result: dict[str, Any] = {}
    for step, values in steps.items():
        found = percentiles(values)
        result[f"{step}_p50_s"], result[f"{step}_p99_s"] = found["p50_s"], found["p99_s"]
    if timeline.status_ready:
        found = percentiles(status_lag)
        result["status_after_deployment_ready_p50_s"] = found["p50_s"]
        result["status_after_deployment_ready_p99_s"] = found["p99_s"]
        result["status_after_deployment_ready_over_1s"] = sum(lag > 1 for lag in status_lag)
        events = sorted(timeline.cr_events[name] for name in timeline.names)
        result["cr_watch_events_per_cr_p50"] = events[len(events) // 2] if events else None
        result["cr_watch_events_total"] = sum(events)
    return result


def missing_children(api: client.ApiClient, namespace: str, names: list[str]) -> int:
    """How many (CR, kind) pairs lack their child, from fresh lists rather than the watches."""
    present = {
        kind: {
            (item["metadata"].get("labels") or {}).get(INSTANCE)
            for item in _get(api, path.format(ns=namespace))["items"]
        }
        for kind, path in CHILD_PATHS.items()
    }
    return sum(name not in present[kind] for kind in CHILD_PATHS for name in names)


def operator_log_summary(path: Path) -> dict[str, Any]:
    """Lines of the operator's JSON log by severity, and tracebacks."""
    severities: Counter[str] = Counter()
    tracebacks = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            tracebacks += line.startswith("Traceback")
            continue
        if isinstance(entry, dict):
            severities[str(entry.get("severity") or entry.get("levelname") or "unknown").lower()] += 1
            tracebacks += "Traceback" in str(entry.get("exc_info") or "")
    return {"operator_log_lines": dict(severities), "operator_log_tracebacks": tracebacks}


def run_peer(
    plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    names: list[str],
    spec: dict[str, Any],
    *,
    workers: int,
    timeout: float,
    logs: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    serving = serving_config({})
    parsed = parse_spec(ModelDeploymentSpec, spec)

    def apply(name: str, timeline: Timeline | None = None) -> None:
        if timeline is not None:
            timeline.start(name, time.monotonic())
        for child in peer_children(name, namespace, parsed, serving):
            k8s.apply(api, child, logger=QUIET)

    apply(WARMUP)
    apps = client.AppsV1Api(api)

    def warm() -> bool:
        status = apps.read_namespaced_deployment_status(WARMUP, namespace).status
        return bool(status.ready_replicas == parsed.replicas)

    plane.wait_for(warm, "the peer's warm-up Deployment Ready")
    timeline = Timeline(names, status_ready=False)
    watches = timeline.watches(api, namespace)
    try:
        for watch in watches:
            watch.begin()
        log(f"peer: applying the children of {len(names)} ModelDeployments")
        served_before = apiserver_requests(api)
        began = time.monotonic()
        calls_s = burst(workers, names, lambda name: apply(name, timeline))
        poll_until(timeline.done, timeout)
        served = requests_per_cr(served_before, apiserver_requests(api), len(names))
    finally:
        for watch in watches:
            watch.stop()
    for watch in watches:
        watch.check()
    timeline.dump(logs / "timeline-peer.json", began)
    result = side_result(timeline, began, calls_s)
    result["children_missing"] = missing_children(api, namespace, names)
    details = breakdown(timeline)
    details["apiserver_requests_per_cr"] = served
    return result, details


def run_ours(
    plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    names: list[str],
    spec: dict[str, Any],
    *,
    workers: int,
    timeout: float,
    logs: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    custom = client.CustomObjectsApi(api)
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.kubeconfig),
        "CLINOPS_WATCH_NAMESPACES": namespace,
        "CLINOPS_SERVICE_MONITORS": "false",
    }
    operator = ManagedProcess("clinops-operator", [str(OPERATOR), "--liveness", ""], logs / "operator.log", env=env)
    operator.start()
    assert operator.pid is not None
    rss = Rss(operator.pid)
    rss.start()
    timeline = Timeline(names, status_ready=True)
    watches = timeline.watches(api, namespace)
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, model_deployment(WARMUP, spec))

        def handled() -> bool:
            found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, WARMUP)
            return bool((found.get("status") or {}).get("phase") == "Ready")

        # The operator is ready once it has taken a first object all the way to Ready.
        operator.wait_until(handled, "the warm-up ModelDeployment Ready")
        for watch in watches:
            watch.begin()
        cpu_before = cpu_seconds(operator.pid)

        def create(name: str) -> None:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, model_deployment(name, spec))
            timeline.start(name, time.monotonic())

        log(f"ours: creating {len(names)} ModelDeployments")
        served_before = apiserver_requests(api)
        began = time.monotonic()
        calls_s = burst(workers, names, create)
        poll_until(lambda: timeline.done() or not operator.running, timeout)
        served = requests_per_cr(served_before, apiserver_requests(api), len(names))
        cpu_used = cpu_seconds(operator.pid) if operator.running else None
        if not operator.running:
            log(f"the operator exited with {operator.process and operator.process.returncode} during the run")
    finally:
        peak_mib = rss.stop()
        operator.stop()
        for watch in watches:
            watch.stop()
    for watch in watches:
        watch.check()
    timeline.dump(logs / "timeline-ours.json", began)
    result = side_result(timeline, began, calls_s)
    result["children_missing"] = missing_children(api, namespace, names)
    result["peak_rss_mib"] = round(peak_mib, 1)
    details = breakdown(timeline)
    details["operator_cpu_s"] = None if cpu_used is None else round(cpu_used - cpu_before, 2)
    details["apiserver_requests_per_cr"] = served
    details.update(operator_log_summary(operator.log))
    return result, details


def ratio(ours: float | None, peer: float | None) -> float | None:
    return None if ours is None or not peer else round(ours / peer, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="ModelDeployments created at once")
    parser.add_argument("--workers", type=int, default=16, help="threads issuing the creates, on both sides")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each side may take to get done")
    parser.add_argument("--run-dir", type=Path, help="keep the logs and every CR's timeline here (default: none)")
    args = parser.parse_args()
    # A plain kill runs the finally blocks too: the operator and the control plane go down with the bench.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sample = yaml.safe_load(SAMPLE.read_text())
    spec: dict[str, Any] = sample["spec"]
    replicas = parse_spec(ModelDeploymentSpec, spec).replicas
    # Both sides' pods stay until the end, warm-ups included.
    nodes = max(2, math.ceil(2 * (args.count + 1) * replicas / PODS_PER_NODE))
    names = [f"md-{index:04d}" for index in range(args.count)]
    suffix = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="clinops-bench-operator-") as tmp:
        run_dir = (args.run_dir or Path(tmp)).resolve()
        logs = run_dir / "logs"
        plane = ControlPlane(run_dir / "control-plane", nodes=nodes)
        log(f"starting the control plane with {nodes} kwok nodes in {run_dir}")
        plane.start()
        # The creating threads and a connection per watch, with room to spare.
        pool = args.workers + 2 * (len(CHILD_PATHS) + 1) + 4
        try:
            with connect(plane.kubeconfig, pool) as api:
                # All of clinops' kinds, as the chart installs them: the operator watches each one it serves.
                crds.install(plane, sorted(CRDS.glob("clinops.io_*.yaml")))
                core = client.CoreV1Api(api)
                namespaces = {"ours": f"bench-operator-{suffix}", "peer": f"bench-peer-{suffix}"}
                for namespace in namespaces.values():
                    create_namespace(plane, core, namespace)
                peer, peer_details = run_peer(
                    plane, api, namespaces["peer"], names, spec, workers=args.workers, timeout=args.timeout, logs=logs
                )
                ours, ours_details = run_ours(
                    plane, api, namespaces["ours"], names, spec, workers=args.workers, timeout=args.timeout, logs=logs
                )
        finally:
            plane.stop()

    keys = ("p50_s", "p99_s", "max_s", "total_s")
    print(
        json.dumps(
            {
                "benchmark": "operator_model_deployments",
                "count": args.count,
                "replicas": replicas,
                "workers": args.workers,
                "ours": ours,
                "peer": peer,
                "ours_over_peer": {key.removesuffix("_s"): ratio(ours[key], peer[key]) for key in keys},
                "targets": {
                    f"p50_under_{TARGET_P50_S:g}s": ours["p50_s"] is not None and ours["p50_s"] < TARGET_P50_S,
                    f"all_within_{TARGET_ALL_S:g}s": ours["total_s"] is not None and ours["total_s"] <= TARGET_ALL_S,
                    f"rss_at_most_{TARGET_RSS_MIB:g}mib": ours["peak_rss_mib"] <= TARGET_RSS_MIB,
                },
                "peer_is": "the operator's own children applied from the bench process, same pool",
            }
        ),
        flush=True,
    )
    print(json.dumps({"benchmark": "operator_where_the_time_goes", "ours": ours_details, "peer": peer_details}))


if __name__ == "__main__":
    main()
