"""The chart's bucket Job script, as helm renders it, run by a real mc against a real MinIO: install and upgrade."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clinops.stack import fetch
from clinops.stack.minio import MinioServer
from tests.e2e.chart import one, render
from tests.e2e.helm import Helm

pytestmark = pytest.mark.e2e

BUCKETS = ("clinops-lake", "clinops-mlflow", "clinops-flink")


@pytest.fixture
def minio(tmp_path: Path) -> Iterator[MinioServer]:
    # No buckets of the stack's own: the script under test makes them.
    server = MinioServer(tmp_path / "minio", buckets=())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_setup(script_dir: Path, minio: MinioServer, workload: tuple[str, str], home: Path) -> str:
    env = {
        "PATH": f"{fetch.mc_binary().parent}:/usr/bin:/bin",
        "HOME": str(home),
        "S3_URL": minio.endpoint,
        "MINIO_ROOT_USER": minio.access_key,
        "MINIO_ROOT_PASSWORD": minio.secret_key,
        "AWS_ACCESS_KEY_ID": workload[0],
        "AWS_SECRET_ACCESS_KEY": workload[1],
    }
    done = subprocess.run(
        ["/bin/sh", str(script_dir / "setup.sh")], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def workload_client(minio: MinioServer, workload: tuple[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=minio.endpoint,
        aws_access_key_id=workload[0],
        aws_secret_access_key=workload[1],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def test_the_bucket_job_makes_the_buckets_and_a_user_confined_to_them_and_reruns_cleanly(
    helm: Helm, minio: MinioServer, tmp_path: Path
) -> None:
    config = one(render(helm), "ConfigMap", "clinops-minio-buckets")["data"]
    script_dir = tmp_path / "config"
    script_dir.mkdir()
    for name, text in config.items():
        (script_dir / name).write_text(text)
    workload = (f"clinops-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)

    output = run_setup(script_dir, minio, workload, tmp_path / "home")
    assert "Buckets ready" in output
    root = minio.client()
    assert {bucket["Name"] for bucket in root.list_buckets()["Buckets"]} == set(BUCKETS)

    # The workloads' user writes where the platform keeps its data, and nowhere else on the server.
    client = workload_client(minio, workload)
    for bucket in BUCKETS:
        client.put_object(Bucket=bucket, Key="probe", Body=b"x")
    root.create_bucket(Bucket="someone-elses")
    with pytest.raises(ClientError, match="AccessDenied"):
        client.put_object(Bucket="someone-elses", Key="probe", Body=b"x")

    # helm upgrade runs the hook again over what the first run made: nothing fails, nothing is lost.
    run_setup(script_dir, minio, workload, tmp_path / "home-upgrade")
    assert client.get_object(Bucket="clinops-lake", Key="probe")["Body"].read() == b"x"
