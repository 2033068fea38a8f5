"""An `mlflow server` with a SQLite backend in its run dir, proxying artifacts to a MinIO bucket or a local dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from clinops.stack.minio import MinioServer
from clinops.stack.process import READY_TIMEOUT_S, ManagedProcess, StackError, free_port

ARTIFACT_BUCKET = "clinops-mlflow"


def mlflow_executable() -> Path:
    # The server runs from the same environment as the caller, so client and server versions always agree.
    executable = Path(sys.executable).with_name("mlflow")
    if not executable.is_file():
        raise StackError(f"{executable} not found: run `make env` for the core environment")
    return executable


class MlflowServer:
    """Tracking and registry on SQLite; clients upload and download artifacts through the server (proxied)."""

    def __init__(self, run_dir: Path, minio: MinioServer | None = None, *, bucket: str = ARTIFACT_BUCKET) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.minio = minio
        self.bucket = bucket
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = self.run_dir / "mlflow.log"
        self.artifacts_destination = f"s3://{bucket}/" if minio is not None else str(self.run_dir / "artifacts")
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"MlflowServer({self.uri!r}, artifacts={self.artifacts_destination!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the server without waiting for it (see :meth:`wait_ready`); a running server is left alone.

        MinIO need not be ready yet: the server only reaches it when artifacts move.
        """
        if self.running:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # The job runner (GenAI evaluation jobs) would be a third process importing MLflow; nothing here submits
        # jobs, and on a small machine it slows the server's start several-fold.
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
        if self.minio is not None:
            env.update(self.minio.env())
        command = [
            str(mlflow_executable()),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.run_dir / 'mlflow.db'}",
            "--artifacts-destination",
            self.artifacts_destination,
            "--workers",
            "1",
            # /metrics, as the chart's server serves it for its ServiceMonitor.
            "--expose-prometheus",
            str(self.run_dir / "metrics"),
        ]
        self._process = ManagedProcess(f"MLflow at {self.uri}", command, self.log, env=env, cwd=self.run_dir)
        self._process.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        if self._process is None:
            raise StackError("the MLflow server was never launched")
        try:
            self._process.wait_http_ok(f"{self.uri}/health", timeout)
        except BaseException:
            self._process.stop()
            raise

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def __enter__(self) -> MlflowServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
