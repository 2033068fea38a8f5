"""The bench's real components: Kafka keeps data and ports across restarts, MinIO holds the lake, MLflow on MinIO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, Producer

from clinops.lake.store import Lake
from clinops.stack.kafka import STACK_TOPICS, KafkaBroker
from clinops.stack.minio import STACK_BUCKETS, MinioServer
from clinops.stack.process import ManagedProcess, StackError, http_ok, pid_alive, poll_until

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, records: dict[str, str]) -> None:
    acknowledged: list[str] = []

    def on_delivery(error: object, message: Message) -> None:
        assert error is None, error
        acknowledged.append((message.key() or b"").decode())

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for key, value in records.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(60) == 0
    assert sorted(acknowledged) == sorted(records)


def _consume_all(bootstrap: str, topic: str, count: int, timeout: float = 60) -> dict[str, str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"stack-test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    records: dict[str, str] = {}
    try:
        consumer.subscribe([topic])
        while len(records) < count:
            batch = consumer.consume(count - len(records), timeout=timeout)
            if not batch:
                break
            for message in batch:
                assert message.error() is None, message.error()
                records[(message.key() or b"").decode()] = (message.value() or b"").decode()
    finally:
        consumer.close()
    return records


def _unique_topic(kafka_broker: KafkaBroker, purpose: str) -> str:
    topic = f"stack-{purpose}-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([topic], partitions=2)
    return topic


def test_the_broker_serves_every_platform_topic(kafka_broker: KafkaBroker) -> None:
    topics = kafka_broker.admin().list_topics(timeout=30).topics
    assert set(STACK_TOPICS) <= set(topics)
    assert {"patient-vitals", "medications", "lab-results", "adverse-events"} <= set(STACK_TOPICS)
    assert {"predictions", "outcomes", "drift-results"} <= set(STACK_TOPICS)
    assert kafka_broker.bootstrap == f"127.0.0.1:{kafka_broker.port}"


def test_a_produced_message_is_consumed_with_its_key(kafka_broker: KafkaBroker) -> None:
    topic = _unique_topic(kafka_broker, "roundtrip")
    _produce(kafka_broker.bootstrap, topic, {"patient-1": '{"heart_rate": 71}'})
    assert _consume_all(kafka_broker.bootstrap, topic, 1) == {"patient-1": '{"heart_rate": 71}'}


def test_restart_and_sigkill_keep_the_ports_and_every_acknowledged_message(kafka_broker: KafkaBroker) -> None:
    topic = _unique_topic(kafka_broker, "restart")
    bootstrap, pid = kafka_broker.bootstrap, kafka_broker.pid
    before = {f"before-{i}": f"value-{i}" for i in range(50)}
    _produce(bootstrap, topic, before)

    kafka_broker.restart()
    assert kafka_broker.pid != pid
    assert kafka_broker.bootstrap == bootstrap
    between = {f"between-{i}": f"value-{i}" for i in range(50)}
    _produce(bootstrap, topic, between)

    kafka_broker.kill()
    assert not kafka_broker.running
    kafka_broker.start()
    assert kafka_broker.bootstrap == bootstrap
    assert _consume_all(bootstrap, topic, 100) == before | between


def test_the_lake_writes_and_reads_objects_on_minio(minio_server: MinioServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in minio_server.env().items():
        monkeypatch.setenv(name, value)
    prefix = f"stack-test-{uuid.uuid4().hex[:8]}"
    lake = Lake(f"s3://clinops-lake/{prefix}")
    lake.write_bytes("bronze/patient-vitals/part-0.jsonl", b'{"patient_id": "p1"}\n')

    assert lake.read_bytes("bronze/patient-vitals/part-0.jsonl") == b'{"patient_id": "p1"}\n'
    assert lake.keys("bronze") == ["bronze/patient-vitals/part-0.jsonl"]
    s3 = minio_server.client()
    try:
        assert {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]} >= set(STACK_BUCKETS)
        stored = s3.get_object(Bucket="clinops-lake", Key=f"{prefix}/bronze/patient-vitals/part-0.jsonl")
        assert stored["Body"].read() == b'{"patient_id": "p1"}\n'
    finally:
        s3.close()


def test_minio_refuses_wrong_credentials(minio_server: MinioServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in minio_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(OSError, match=r"(?i)signature|access denied|forbidden"):
        Lake("s3://clinops-lake/").write_bytes("denied.txt", b"x")


def test_an_mlflow_artifact_lands_in_the_minio_bucket(
    mlflow_on_minio: str, minio_server: MinioServer, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_on_minio)
    experiment_id = client.create_experiment(f"stack-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"auc": 0.81}))
    client.log_artifact(run.info.run_id, str(report), artifact_path="evaluation")
    client.set_terminated(run.info.run_id)

    s3 = minio_server.client()
    try:
        listing = s3.list_objects_v2(Bucket="clinops-mlflow")
        keys = [item["Key"] for item in listing.get("Contents", []) if run.info.run_id in item["Key"]]
        assert len(keys) == 1
        assert keys[0].endswith("evaluation/report.json")
        assert json.loads(s3.get_object(Bucket="clinops-mlflow", Key=keys[0])["Body"].read()) == {"auc": 0.81}
    finally:
        s3.close()
    downloaded = client.download_artifacts(run.info.run_id, "evaluation/report.json", str(tmp_path / "back"))
    assert json.loads(Path(downloaded).read_text()) == {"auc": 0.81}


def test_mlflow_counts_its_requests_on_metrics_as_the_charts_server_does(mlflow_on_minio: str) -> None:
    import urllib.request

    from mlflow import MlflowClient

    MlflowClient(tracking_uri=mlflow_on_minio).search_experiments(max_results=1)
    with urllib.request.urlopen(f"{mlflow_on_minio}/metrics", timeout=10) as response:
        text = response.read().decode()
    # The series the chart's ServiceMonitor brings to Prometheus: request latencies by method and status.
    answered = [
        line
        for line in text.splitlines()
        if line.startswith("mlflow_http_request_duration_seconds_count{") and 'status="200"' in line
    ]
    assert answered, text[:2000]
    assert float(answered[0].rpartition(" ")[2]) >= 1


def test_readiness_fails_fast_with_the_log_tail_when_the_process_exits(tmp_path: Path) -> None:
    process = ManagedProcess(
        "doomed", [sys.executable, "-c", "print('cannot bind', flush=True); raise SystemExit(3)"], tmp_path / "log"
    )
    process.start()
    with pytest.raises(StackError, match=r"(?s)doomed exited with 3 before HTTP 200.*cannot bind"):
        process.wait_http_ok("http://127.0.0.1:9/health", timeout=60)
    process.stop()


def test_stop_takes_down_the_whole_process_group(tmp_path: Path) -> None:
    # A parent that ignores SIGTERM and a grandchild: both must be gone after stop().
    script = (
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    log = tmp_path / "log"
    process = ManagedProcess("group", [sys.executable, "-c", script], log)
    process.start()
    process.wait_until(lambda: log.read_text().strip().isdigit(), "the grandchild's pid", timeout=60)
    grandchild = int(log.read_text())
    process.stop(timeout=2)
    assert not process.running
    assert not pid_alive(grandchild)


def test_a_sigkilled_parent_takes_its_servers_with_it(tmp_path: Path) -> None:
    # The parent gets no chance to tear down: its child must still go, or a killed test session leaks servers.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from clinops.stack.process import ManagedProcess\n"
        "child = ManagedProcess('child', [sys.executable, '-c', 'import time; time.sleep(600)'], Path(sys.argv[1]))\n"
        "child.start()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    log = tmp_path / "parent.log"
    parent = ManagedProcess("parent", [sys.executable, "-c", script, str(tmp_path / "child.log")], log)
    parent.start()
    parent.wait_until(lambda: log.read_text().strip().isdigit(), "the child's pid", timeout=60)
    child = int(log.read_text())
    parent.kill()
    assert poll_until(lambda: not pid_alive(child), timeout=60)


def test_stack_up_detached_then_down_leaves_nothing_running(tmp_path: Path) -> None:
    clinops = str(Path(sys.executable).with_name("clinops"))
    env = {**os.environ, "CLINOPS_HOME": str(tmp_path / "home")}
    up = subprocess.run([clinops, "stack", "up", "--detach"], env=env, capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "home" / "stack" / "state.json").read_text())
    exported = subprocess.run([clinops, "stack", "env"], env=env, capture_output=True, text=True, timeout=60)
    try:
        assert exported.returncode == 0, exported.stderr
        for name in ("CLINOPS_KAFKA_BOOTSTRAP", "MLFLOW_TRACKING_URI", "CLINOPS_S3_ENDPOINT", "AWS_ACCESS_KEY_ID"):
            assert f"export {name}=" in exported.stdout
        assert http_ok(f"{state['env']['MLFLOW_TRACKING_URI']}/health")
        assert http_ok(f"{state['env']['CLINOPS_S3_ENDPOINT']}/minio/health/ready")
        assert oct((tmp_path / "home" / "stack" / "state.json").stat().st_mode & 0o777) == "0o600"
    finally:
        down = subprocess.run([clinops, "stack", "down"], env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert not (tmp_path / "home" / "stack" / "state.json").exists()
    for pid in [state["pid"], *state["process_groups"]]:
        assert not pid_alive(pid)
    assert not http_ok(f"{state['env']['MLFLOW_TRACKING_URI']}/health")
