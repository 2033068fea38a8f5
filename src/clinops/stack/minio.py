"""A MinIO server built from the Go module proxy, on a loopback port, with per-start or environment credentials."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from clinops.stack.fetch import MINIO_VERSION, minio_binary
from clinops.stack.process import READY_TIMEOUT_S, ManagedProcess, StackError, free_port

STACK_BUCKETS: tuple[str, ...] = ("clinops-lake", "clinops-mlflow", "clinops-flink")
USER_ENV = "CLINOPS_MINIO_ROOT_USER"
PASSWORD_ENV = "CLINOPS_MINIO_ROOT_PASSWORD"
REGION = "us-east-1"


def _credentials(access_key: str | None, secret_key: str | None) -> tuple[str, str]:
    """Explicit arguments, else the environment, else fresh random ones: no credential is ever fixed in code."""
    user = access_key or os.environ.get(USER_ENV) or f"clinops-{secrets.token_hex(4)}"
    password = secret_key or os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(24)
    if len(user) < 3 or len(password) < 8:
        raise StackError(f"MinIO needs a user of 3+ characters and a password of 8+ ({USER_ENV}, {PASSWORD_ENV})")
    return user, password


class MinioServer:
    """One MinIO server on a single drive in ``run_dir/data``; the stack's buckets exist once :meth:`start` returns."""

    def __init__(
        self,
        run_dir: Path,
        *,
        buckets: Iterable[str] = STACK_BUCKETS,
        access_key: str | None = None,
        secret_key: str | None = None,
        version: str = MINIO_VERSION,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.version = version
        self.buckets = tuple(buckets)
        self.access_key, self.secret_key = _credentials(access_key, secret_key)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = self.run_dir / "data"
        self.log = self.run_dir / "minio.log"
        self._process: ManagedProcess | None = None

    def __repr__(self) -> str:
        return f"MinioServer({self.endpoint!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def env(self) -> dict[str, str]:
        """What a client of this server needs: the clinops lake, boto3, pyarrow and MLflow all read these."""
        return {
            "CLINOPS_S3_ENDPOINT": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
        )

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the server without waiting for it (see :meth:`wait_ready`); a running server is left alone."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            # A loopback test server: no web console, no update checks, no telemetry.
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CALLHOME_ENABLE": "off",
        }
        command = [
            str(minio_binary(self.version)),
            "server",
            "--quiet",
            "--address",
            f"127.0.0.1:{self.port}",
            str(self.data_dir),
        ]
        self._process = ManagedProcess(f"MinIO at {self.endpoint}", command, self.log, env=env, cwd=self.run_dir)
        self._process.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait for the readiness endpoint, then create the missing buckets; the server is stopped on failure."""
        if self._process is None:
            raise StackError("the MinIO server was never launched")
        try:
            self._process.wait_http_ok(f"{self.endpoint}/minio/health/ready", timeout)
            self.create_buckets(self.buckets)
        except BaseException:
            self._process.stop()
            raise

    def create_buckets(self, names: Iterable[str]) -> None:
        """Create the buckets that do not exist yet."""
        s3 = self.client()
        try:
            existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
            for name in names:
                if name not in existing:
                    s3.create_bucket(Bucket=name)
        finally:
            s3.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def __enter__(self) -> MinioServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
