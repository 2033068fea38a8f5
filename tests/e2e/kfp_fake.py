"""A loopback fake of the KFP v2beta1 REST API, built on kfp_server_api models, recording what clients submit."""

from __future__ import annotations

import datetime
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api
from kfp_server_api import models

PREFIX = "/apis/v2beta1"
# The states a run ends in: terminating one of these changes nothing, as on the real server.
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _matches(item: dict[str, Any], raw_filter: str | None) -> bool:
    """Whether ``item`` passes the EQUALS predicates of a KFP filter (the only operation clients here send)."""
    if not raw_filter:
        return True
    for predicate in json.loads(raw_filter).get("predicates", []):
        if predicate.get("operation") not in (1, "EQUALS"):
            raise ValueError(f"unsupported filter operation {predicate.get('operation')!r}")
        wanted = predicate.get("stringValue", predicate.get("string_value"))
        if item.get(predicate["key"]) != wanted:
            return False
    return True


class KfpFake:
    """The server's state: experiments, runs and recurring runs as the client submitted them, plus run states."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.terminated: list[str] = []
        # Every request as (method, path, query): a test can tell whether a client has looked for something.
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.url = ""
        self._serializer = kfp_server_api.ApiClient()

    # The test's side.

    def runs_named(self, display_name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [run for run in self.runs.values() if run["display_name"] == display_name]

    def set_state(self, run_id: str, state: str) -> None:
        with self.lock:
            run = self.runs[run_id]
            run["state"] = state
            if state in FINAL_STATES:
                run["finished_at"] = _now()

    def parameters(self, run_id: str) -> dict[str, Any]:
        with self.lock:
            return dict((self.runs[run_id].get("runtime_config") or {}).get("parameters") or {})

    # The server's side: each returns the response status and a model (or None for an empty body).

    def _dump(self, model: Any) -> Any:
        return self._serializer.sanitize_for_serialization(model)

    def _experiment(self, stored: dict[str, Any]) -> models.V2beta1Experiment:
        return models.V2beta1Experiment(
            experiment_id=stored["experiment_id"],
            display_name=stored["display_name"],
            namespace=stored.get("namespace"),
            created_at=stored["created_at"],
            storage_state="AVAILABLE",
        )

    def _run(self, stored: dict[str, Any]) -> models.V2beta1Run:
        config = stored.get("runtime_config") or {}
        return models.V2beta1Run(
            experiment_id=stored.get("experiment_id"),
            run_id=stored["run_id"],
            display_name=stored["display_name"],
            storage_state="AVAILABLE",
            pipeline_spec=stored.get("pipeline_spec"),
            runtime_config=models.V2beta1RuntimeConfig(
                parameters=config.get("parameters"), pipeline_root=config.get("pipeline_root")
            ),
            service_account=stored.get("service_account"),
            created_at=stored["created_at"],
            finished_at=stored.get("finished_at"),
            state=stored["state"],
        )

    def _recurring_run(self, stored: dict[str, Any]) -> models.V2beta1RecurringRun:
        trigger = stored.get("trigger") or {}
        cron = trigger.get("cron_schedule")
        return models.V2beta1RecurringRun(
            recurring_run_id=stored["recurring_run_id"],
            display_name=stored["display_name"],
            experiment_id=stored.get("experiment_id"),
            pipeline_spec=stored.get("pipeline_spec"),
            runtime_config=models.V2beta1RuntimeConfig(
                parameters=(stored.get("runtime_config") or {}).get("parameters")
            ),
            trigger=models.V2beta1Trigger(
                cron_schedule=models.V2beta1CronSchedule(cron=cron["cron"]) if cron else None
            ),
            mode=stored.get("mode") or "ENABLE",
            max_concurrency=stored.get("max_concurrency"),
            no_catchup=stored.get("no_catchup"),
            status="ENABLED",
            created_at=stored["created_at"],
        )

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, query))
        for pattern, verb, action in self._routes():
            match = re.fullmatch(PREFIX + pattern, path)
            if match and verb == method:
                with self.lock:
                    return action(*match.groups(), query=query, body=body)
        return HTTPStatus.NOT_FOUND, {"error": f"no route for {method} {path}", "code": 5}

    def _routes(self) -> list[tuple[str, str, Callable[..., tuple[int, Any]]]]:
        return [
            ("/healthz", "GET", self._healthz),
            ("/experiments", "POST", self._create_experiment),
            ("/experiments", "GET", self._list_experiments),
            ("/experiments/([^/:]+)", "GET", self._get_experiment),
            ("/runs", "POST", self._create_run),
            ("/runs", "GET", self._list_runs),
            ("/runs/([^/:]+)", "GET", self._get_run),
            ("/runs/([^/:]+):terminate", "POST", self._terminate_run),
            ("/recurringruns", "POST", self._create_recurring_run),
            ("/recurringruns", "GET", self._list_recurring_runs),
            ("/recurringruns/([^/:]+)", "GET", self._get_recurring_run),
            ("/recurringruns/([^/:]+)", "DELETE", self._delete_recurring_run),
        ]

    def _healthz(self, **_: Any) -> tuple[int, Any]:
        return HTTPStatus.OK, self._dump(models.V2beta1GetHealthzResponse(multi_user=False))

    def _create_experiment(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        stored = {**body, "experiment_id": str(uuid.uuid4()), "created_at": _now()}
        self.experiments[stored["experiment_id"]] = stored
        return HTTPStatus.OK, self._dump(self._experiment(stored))

    def _list_experiments(self, *, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        found = [self._experiment(e) for e in self.experiments.values() if _matches(e, query.get("filter"))]
        response = models.V2beta1ListExperimentsResponse(experiments=found, total_size=len(found))
        return HTTPStatus.OK, self._dump(response)

    def _get_experiment(self, experiment_id: str, **_: Any) -> tuple[int, Any]:
        if experiment_id not in self.experiments:
            return HTTPStatus.NOT_FOUND, {"error": "experiment not found", "code": 5}
        return HTTPStatus.OK, self._dump(self._experiment(self.experiments[experiment_id]))

    def _create_run(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        if not body.get("pipeline_spec"):
            return HTTPStatus.BAD_REQUEST, {"error": "only runs with an inline pipeline_spec are served", "code": 3}
        stored = {**body, "run_id": str(uuid.uuid4()), "created_at": _now(), "state": "PENDING"}
        self.runs[stored["run_id"]] = stored
        return HTTPStatus.OK, self._dump(self._run(stored))

    def _list_runs(self, *, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        experiment = query.get("experiment_id")
        found = [
            self._run(run)
            for run in self.runs.values()
            if _matches(run, query.get("filter")) and experiment in (None, run.get("experiment_id"))
        ]
        return HTTPStatus.OK, self._dump(models.V2beta1ListRunsResponse(runs=found, total_size=len(found)))

    def _get_run(self, run_id: str, **_: Any) -> tuple[int, Any]:
        if run_id not in self.runs:
            return HTTPStatus.NOT_FOUND, {"error": "run not found", "code": 5}
        return HTTPStatus.OK, self._dump(self._run(self.runs[run_id]))

    def _terminate_run(self, run_id: str, **_: Any) -> tuple[int, Any]:
        run = self.runs.get(run_id)
        if run is None:
            return HTTPStatus.NOT_FOUND, {"error": "run not found", "code": 5}
        self.terminated.append(run_id)
        if run["state"] not in FINAL_STATES:
            run["state"], run["finished_at"] = "CANCELED", _now()
        return HTTPStatus.OK, {}

    def _create_recurring_run(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        stored = {**body, "recurring_run_id": str(uuid.uuid4()), "created_at": _now()}
        self.recurring_runs[stored["recurring_run_id"]] = stored
        return HTTPStatus.OK, self._dump(self._recurring_run(stored))

    def _list_recurring_runs(self, *, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        found = [self._recurring_run(r) for r in self.recurring_runs.values() if _matches(r, query.get("filter"))]
        response = models.V2beta1ListRecurringRunsResponse(recurring_runs=found, total_size=len(found))
        return HTTPStatus.OK, self._dump(response)

    def _get_recurring_run(self, recurring_run_id: str, **_: Any) -> tuple[int, Any]:
        if recurring_run_id not in self.recurring_runs:
            return HTTPStatus.NOT_FOUND, {"error": "recurring run not found", "code": 5}
        return HTTPStatus.OK, self._dump(self._recurring_run(self.recurring_runs[recurring_run_id]))

    def _delete_recurring_run(self, recurring_run_id: str, **_: Any) -> tuple[int, Any]:
        if self.recurring_runs.pop(recurring_run_id, None) is None:
            return HTTPStatus.NOT_FOUND, {"error": "recurring run not found", "code": 5}
        return HTTPStatus.OK, {}


def _handler(fake: KfpFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            try:
                status, payload = fake.handle(method, parts.path, query, body)
            except (KeyError, ValueError) as exc:
                status, payload = HTTPStatus.BAD_REQUEST, {"error": str(exc), "code": 3}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            # Polling fills the test output otherwise.
            pass

    return Handler


@contextmanager
def serve() -> Iterator[KfpFake]:
    """The fake on 127.0.0.1 and a free port, serving from a thread until the block ends."""
    fake = KfpFake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="kfp-fake", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
