"""Real services for the integration tier, started on free loopback ports and torn down after the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clinops.stack.minio import MinioServer
from clinops.stack.mlflow_server import MlflowServer
from clinops.stack.process import free_port, wait_until_healthy


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A real MinIO server with the stack's buckets; ``.env()`` is what a client of it needs."""
    server = MinioServer(tmp_path_factory.mktemp("minio"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_on_minio(tmp_path_factory: pytest.TempPathFactory, minio_server: MinioServer) -> Iterator[str]:
    """The tracking URI of a real `mlflow server` whose artifacts go to the MinIO fixture's clinops-mlflow bucket."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-on-minio"), minio_server)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` (SQLite backend, proxied artifacts in a temp dir) on a free port."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gold_lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small lake, bronze through gold, from the synthetic generator."""
    from clinops.data.emit import emit_to_lake
    from clinops.data.generator import GeneratorConfig, generate
    from clinops.features.offline import build_gold
    from clinops.lake.silver import bronze_to_silver
    from clinops.lake.store import Lake

    root = tmp_path_factory.mktemp("lake")
    lake = Lake(root)
    emit_to_lake(generate(GeneratorConfig(patients=900, seed=5, days=60)), lake)
    bronze_to_silver(lake)
    build_gold(lake)
    return str(root)


class ModelServer:
    """A `clinops serve` process on a free port, configured by a ModelDeployment file it re-reads while running."""

    def __init__(self, root: Path, deployment: dict[str, object], env: dict[str, str]) -> None:
        self.root = root
        self.deployment_file = root / "deployment.yaml"
        self.deployment = deployment
        self.write_deployment(deployment)
        self.log = root / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(Path(sys.executable).with_name("clinops")),
            "serve",
            "-f",
            str(self.deployment_file),
            "--port",
            str(self.port),
        ]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True
            )

    def write_deployment(self, deployment: dict[str, object]) -> None:
        # Write then rename, as a ConfigMap volume update does: the server never reads half a file.
        staged = self.deployment_file.with_suffix(".tmp")
        staged.write_text(yaml.safe_dump(deployment))
        staged.replace(self.deployment_file)

    def wait_ready(self) -> None:
        wait_until_healthy(f"{self.url}/health/ready", self.process, self.log)

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def start_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Starts model servers for a test and stops whichever are still running when it ends."""
    started: list[ModelServer] = []

    def start(deployment: dict[str, object], env: dict[str, str], *, ready: bool = True) -> ModelServer:
        server = ModelServer(tmp_path_factory.mktemp("model-server"), deployment, env)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()
