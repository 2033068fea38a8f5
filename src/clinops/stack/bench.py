"""The whole bench in one object: Kafka, MinIO and MLflow on MinIO, started together and torn down together."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from clinops.stack.fetch import kafka_libs, minio_binary
from clinops.stack.kafka import KafkaBroker
from clinops.stack.minio import MinioServer
from clinops.stack.mlflow_server import MlflowServer

LAKE_BUCKET = "clinops-lake"


class Stack:
    """Components live in sub-directories of ``run_dir`` (``kafka/``, ``minio/``, ``mlflow/``) with their logs."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.kafka = KafkaBroker(self.run_dir / "kafka")
        self.minio = MinioServer(self.run_dir / "minio")
        self.mlflow = MlflowServer(self.run_dir / "mlflow", self.minio)

    def start(self, progress: Callable[[str], None] = lambda _: None) -> None:
        """Fetch what is missing, launch all three at once, then wait for each: start-up costs the slowest one."""
        progress("Fetching Kafka and MinIO into the cache (first run only)")
        kafka_libs(self.kafka.version)
        minio_binary(self.minio.version)
        try:
            progress("Launching MinIO, MLflow and Kafka")
            self.minio.launch()
            self.mlflow.launch()
            self.kafka.launch()
            progress("Waiting for MinIO")
            self.minio.wait_ready()
            progress("Waiting for MLflow")
            self.mlflow.wait_ready()
            progress("Waiting for Kafka")
            self.kafka.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Clients first: MLflow may be mid-upload to MinIO.
        self.mlflow.stop()
        self.kafka.stop()
        self.minio.stop()

    def failed_component(self) -> str | None:
        """The name of a component whose process has exited, if any (for a supervisor loop)."""
        for name, component in (("Kafka", self.kafka), ("MinIO", self.minio), ("MLflow", self.mlflow)):
            if not component.running:
                return name
        return None

    def env(self) -> dict[str, str]:
        """The environment a clinops command needs to use this stack instead of its embedded defaults."""
        return {
            "CLINOPS_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "MLFLOW_TRACKING_URI": self.mlflow.uri,
            "CLINOPS_LAKE": f"s3://{LAKE_BUCKET}",
            **self.minio.env(),
        }

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
