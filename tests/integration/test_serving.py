"""The model server as a real process, serving versions registered in a real MLflow server."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow import MlflowClient

from clinops.lake.bronze import iter_bronze
from clinops.lake.store import Lake, read_table_uri
from clinops.specs.training_job import Algorithm, DatasetSpec
from clinops.training.dataset import prepare_training_data
from clinops.training.steps import fit_pipeline, log_registered_model
from tests.integration.conftest import ModelServer
from tests.integration.kafka_helpers import consume, group_at_end

MODEL = "readmission-serve"


@dataclass(frozen=True)
class Registry:
    tracking_uri: str
    versions: list[str]
    X: pd.DataFrame  # held-out rows to score
    patient_ids: list[str]
    lake_root: str

    def pyfunc_scores(self, version: str, X: pd.DataFrame) -> np.ndarray[Any, Any]:
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
        return np.asarray(model.predict(X))[:, 1]


@pytest.fixture(scope="module")
def registry(mlflow_server: str, gold_lake: str) -> Registry:
    """Two XGBoost versions registered as training registers them: champion is 1, challenger is 2."""
    frame = read_table_uri("lake://gold/encounters/", gold_lake).to_pandas()
    data = prepare_training_data(frame, DatasetSpec(uri="lake://gold/encounters/", target="readmitted_30d"))
    X, y = data.xy(data.train)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("clinops/serving-tests")
    versions = []
    for params in ({"n_estimators": 40, "max_depth": 3}, {"n_estimators": 80, "max_depth": 4}):
        with mlflow.start_run():
            pipeline = fit_pipeline(Algorithm.XGBOOST, params, X, pd.Series(y), seed=7)
            versions.append(log_registered_model(pipeline, X, MODEL, Algorithm.XGBOOST))
    client = MlflowClient(mlflow_server)
    client.set_registered_model_alias(MODEL, "champion", versions[0])
    client.set_registered_model_alias(MODEL, "challenger", versions[1])
    # Only the hot-reload test moves this one, so servers following champion never see it move.
    client.set_registered_model_alias(MODEL, "live", versions[0])
    X_test, _ = data.xy(data.test)
    return Registry(mlflow_server, versions, X_test, data.test["patient_id"].astype(str).tolist(), gold_lake)


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "clinops.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "readmission-serve"},
        "spec": {
            "model": {"name": MODEL, "alias": "champion"},
            "reloadIntervalSeconds": 0.5,
            "shutdownGraceSeconds": 1,
            "predictionLog": {"flushSeconds": 0.2},
            **spec,
        },
    }


def features(row: pd.Series) -> dict[str, Any]:
    """A row as a client sends it: missing values left out."""
    return {k: (int(v) if float(v).is_integer() else float(v)) for k, v in row.items() if pd.notna(v)}


@pytest.fixture
def server_env(registry: Registry, tmp_path: Path) -> dict[str, str]:
    return environment(registry, tmp_path)


def environment(registry: Registry, root: Path) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": registry.tracking_uri, "CLINOPS_LAKE": str(root / "lake"), "CLINOPS_HOME": str(root)}


@pytest.fixture(scope="module")
def champion_server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """One server following champion, for the tests that only read from it."""
    root = tmp_path_factory.mktemp("champion-server")
    server = ModelServer(root, deployment(), environment(registry, root))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


Start = Callable[..., ModelServer]


def test_scores_match_the_mlflow_pyfunc_model_single_and_batch(
    registry: Registry, champion_server: ModelServer
) -> None:
    server = champion_server
    X = registry.X.head(64)
    expected = registry.pyfunc_scores(registry.versions[0], X)
    with httpx.Client(base_url=server.url) as client:
        single = [
            client.post("/predict", json={"patient_id": pid, "features": features(row)}).json()
            for pid, (_, row) in zip(registry.patient_ids, X.iterrows(), strict=False)
        ]
        batch = client.post(
            "/predict", json={"instances": [{"features": features(row)} for _, row in X.iterrows()]}
        ).json()
        status = client.get("/status").json()
    assert status["primary"] == {"version": registry.versions[0], "path": "onnxruntime"}
    np.testing.assert_allclose([r["score"] for r in single], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose([p["score"] for p in batch["predictions"]], expected, rtol=0, atol=1e-6)
    assert {r["model_version"] for r in single} == {registry.versions[0]}
    assert {r["variant"] for r in single} == {"primary"}
    assert all(r["label"] == int(r["score"] >= 0.5) for r in single)
    assert len({r["request_id"] for r in single}) == len(single)


def test_v2_infer_with_a_matrix_and_with_one_input_per_feature(
    registry: Registry, champion_server: ModelServer
) -> None:
    server = champion_server
    X = registry.X.head(8)
    expected = registry.pyfunc_scores(registry.versions[0], X)
    with httpx.Client(base_url=server.url) as client:
        metadata = client.get(f"/v2/models/{MODEL}").json()
        names = [i["name"] for i in metadata["inputs"] if i["datatype"] != "BYTES"]
        assert names == list(X.columns)
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
        matrix = X.to_numpy()
        tensor = {
            "id": "req-1",
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(matrix.shape),
                    "datatype": "FP64",
                    "data": [None if np.isnan(v) else float(v) for v in matrix.ravel()],
                }
            ],
        }
        by_tensor = client.post(f"/v2/models/{MODEL}/infer", json=tensor).json()
        columns = {
            "inputs": [
                {
                    "name": name,
                    "shape": [len(X)],
                    "datatype": "FP64",
                    "data": [None if pd.isna(v) else v for v in X[name]],
                }
                for name in X.columns
            ]
        }
        by_column = client.post(f"/v2/models/{MODEL}/versions/{registry.versions[0]}/infer", json=columns).json()
        unknown = client.post(f"/v2/models/{MODEL}/versions/99/infer", json=columns)
    assert by_tensor["id"] == "req-1"
    assert by_tensor["model_name"] == MODEL
    assert by_tensor["model_version"] == registry.versions[0]
    outputs = {o["name"]: o for o in by_tensor["outputs"]}
    np.testing.assert_allclose(outputs["score"]["data"], expected, atol=1e-6)
    np.testing.assert_allclose({o["name"]: o for o in by_column["outputs"]}["score"]["data"], expected, atol=1e-6)
    assert unknown.status_code == 404


def test_bad_requests_get_422_with_field_errors(registry: Registry, champion_server: ModelServer) -> None:
    server = champion_server
    with httpx.Client(base_url=server.url) as client:
        metadata = client.get(f"/v2/models/{MODEL}").json()
        optional = {i["name"] for i in metadata["inputs"] if i.get("optional")} - {"patient_id"}
        row = dict.fromkeys(registry.X.columns, 1.0)
        required = next(name for name in registry.X.columns if name not in optional)

        def detail(body: Any) -> list[dict[str, Any]]:
            response = client.post("/predict", json=body)
            assert response.status_code == 422, response.text
            return list(response.json()["detail"])

        assert detail({"features": {**row, "not_a_feature": 1}})[0]["loc"] == ["body", "features", "not_a_feature"]
        wrong = detail({"features": {**row, required: "high"}})
        assert wrong[0]["loc"] == ["body", "features", required]
        assert "number" in wrong[0]["msg"]
        missing = detail({"features": {k: v for k, v in row.items() if k != required}})
        assert missing[0]["loc"] == ["body", "features", required]
        assert missing[0]["type"] == "missing"
        assert detail({"features": {**row, required: None}})[0]["loc"] == ["body", "features", required]
        assert detail({"instances": []})[0]["loc"] == ["body", "instances"]
        bad_json = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert bad_json.status_code == 422
        assert bad_json.json()["detail"][0]["type"] == "json_invalid"
        # What the model saw missing in training may stay missing.
        if optional:
            kept = {k: v for k, v in row.items() if k not in optional}
            assert client.post("/predict", json={"features": kept}).status_code == 200


def test_a_moved_alias_is_swapped_in_under_load_without_a_failed_or_mixed_request(
    registry: Registry, start_model_server: Start, server_env: dict[str, str]
) -> None:
    server = start_model_server(deployment(model={"name": MODEL, "alias": "live"}), server_env)
    row = registry.X.head(1)
    expected = {v: float(registry.pyfunc_scores(v, row)[0]) for v in registry.versions}
    assert expected[registry.versions[0]] != expected[registry.versions[1]]
    body = {"patient_id": "p-1", "features": features(row.iloc[0])}
    answers: list[tuple[int, str, float]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=server.url) as client:
            while not stop.is_set():
                response = client.post("/predict", json=body)
                payload = response.json() if response.status_code == 200 else {}
                answers.append((response.status_code, payload.get("model_version", ""), payload.get("score", -1.0)))

    client = MlflowClient(registry.tracking_uri)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(hammer) for _ in range(4)]
        try:
            time.sleep(1)
            client.set_registered_model_alias(MODEL, "live", registry.versions[1])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(v == registry.versions[1] for _, v, _ in answers[-50:]):
                time.sleep(0.1)
            time.sleep(1)
        finally:
            stop.set()
            client.set_registered_model_alias(MODEL, "live", registry.versions[0])
        for worker in workers:
            worker.result()
    statuses = {status for status, _, _ in answers}
    assert statuses == {200}, statuses
    seen = [version for _, version, _ in answers]
    assert seen[0] == registry.versions[0]
    assert seen[-1] == registry.versions[1]
    # Each answer's score is the one its reported version gives: no request was scored by one version and
    # labelled with another.
    for _, version, score in answers:
        assert score == pytest.approx(expected[version], abs=1e-6)


def test_canary_share_is_within_three_points_and_sticky_then_changes_without_a_restart(
    registry: Registry, start_model_server: Start, server_env: dict[str, str]
) -> None:
    canary = {"alias": "challenger", "trafficPercent": 20, "stickyKey": "patient_id"}
    server = start_model_server(deployment(canary=canary), server_env)
    row = features(registry.X.iloc[0])
    keys = [f"patient-{i:05d}" for i in range(5000)]
    instances = [{"patient_id": key, "features": row} for key in keys]
    with httpx.Client(base_url=server.url, timeout=60) as client:

        def variants() -> list[str]:
            predictions: list[dict[str, Any]] = []
            for start in range(0, len(instances), 1000):
                response = client.post("/predict", json={"instances": instances[start : start + 1000]})
                predictions.extend(response.json()["predictions"])
            return [p["variant"] for p in predictions]

        first = variants()
        share = first.count("canary") / len(first) * 100
        assert 17 <= share <= 23, share
        assert variants() == first  # sticky: each key keeps its variant
        versions = {
            client.post("/predict", json={"patient_id": key, "features": row}).json()["model_version"]
            for key, variant in zip(keys[:200], first[:200], strict=True)
            if variant == "canary"
        }
        assert versions == {registry.versions[1]}
        metrics = client.get("/metrics").text
        assert 'variant="canary"' in metrics

        server.write_deployment(deployment(canary={**canary, "trafficPercent": 50}))
        deadline = time.monotonic() + 30
        while client.get("/status").json()["canary"]["trafficPercent"] != 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        share = variants().count("canary") / len(instances) * 100
        assert 47 <= share <= 53, share


def test_predictions_land_in_the_lake_and_sigterm_drains_gracefully(
    registry: Registry, start_model_server: Start, server_env: dict[str, str]
) -> None:
    server = start_model_server(deployment(shutdownGraceSeconds=2), server_env)
    X = registry.X.head(20)
    with httpx.Client(base_url=server.url) as client:
        for pid, (_, row) in zip(registry.patient_ids, X.iterrows(), strict=False):
            assert client.post("/predict", json={"patient_id": pid, "features": features(row)}).status_code == 200
        server.process.send_signal(15)
        time.sleep(0.5)
        # Draining: unready for the load balancer, still answering what reaches it.
        assert client.get("/health/ready").status_code == 503
        row = features(X.iloc[0])
        assert client.post("/predict", json={"features": row}).status_code == 200
    server.process.wait(timeout=60)
    records = [
        line for _, data in iter_bronze(Lake(server_env["CLINOPS_LAKE"]), "predictions") for line in data.splitlines()
    ]
    assert len(records) == 21
    first = orjson.loads(records[0])
    assert set(first) == {
        "request_id",
        "row",
        "timestamp_ms",
        "model",
        "model_version",
        "variant",
        "key",
        "features",
        "score",
    }
    assert first["model_version"] == registry.versions[0]
    assert set(first["features"]) == set(registry.X.columns)
    # Objects are named by offsets and flushed on a timer, so their key order is not request order: compare sets.
    assert {orjson.loads(r)["key"] for r in records} == {*registry.patient_ids[:20], None}


def test_predictions_reach_kafka_keyed_by_the_sticky_key(
    registry: Registry, start_model_server: Start, server_env: dict[str, str], kafka_broker: Any
) -> None:
    group = group_at_end(kafka_broker.bootstrap, "serving-test", ("predictions",))
    env = {**server_env, "CLINOPS_KAFKA_BOOTSTRAP": kafka_broker.bootstrap}
    server = start_model_server(deployment(), env)
    X = registry.X.head(30)
    with httpx.Client(base_url=server.url) as client:
        instances = [
            {"patient_id": pid, "features": features(row)}
            for pid, (_, row) in zip(registry.patient_ids, X.iterrows(), strict=False)
        ]
        response = client.post("/predict", json={"instances": instances})
        assert response.status_code == 200
    messages = consume(kafka_broker.bootstrap, group, ("predictions",), len(instances))
    assert len(messages) == len(instances)
    records = [orjson.loads(m.value()) for m in messages]
    assert {m.key().decode() for m in messages} == set(registry.patient_ids[:30])
    assert all(r["key"] == m.key().decode() for r, m in zip(records, messages, strict=True))
    expected = dict(zip(registry.patient_ids[:30], (p["score"] for p in response.json()["predictions"]), strict=True))
    assert all(abs(r["score"] - expected[r["key"]]) < 1e-9 for r in records)
    assert {r["model_version"] for r in records} == {registry.versions[0]}
    # No lake objects: Kafka is the log's sink when a broker is configured.
    assert not Lake(server_env["CLINOPS_LAKE"]).keys("bronze/predictions/")


def test_a_missing_model_keeps_the_server_live_but_not_ready(
    registry: Registry, start_model_server: Start, server_env: dict[str, str]
) -> None:
    spec = deployment()
    spec["spec"]["model"] = {"name": MODEL, "alias": "no-such-alias"}
    server = start_model_server(spec, server_env, ready=False)
    with httpx.Client(base_url=server.url) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if client.get("/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        # Live at once; the first registry lookup then fails and the reason says which reference is missing.
        ready = client.get("/health/ready")
        while ready.json()["reason"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.2)
            ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "no-such-alias" in ready.json()["reason"]
        assert client.post("/predict", json={"features": {}}).status_code == 503


def test_generated_requests_from_our_openapi_document_never_get_a_5xx(
    champion_server: ModelServer, tmp_path: Path
) -> None:
    """schemathesis reads /openapi.json (the request schema comes from the served model's signature) and fuzzes."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{champion_server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "10",
            "--seed",
            "7",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # its example cache stays out of the working tree
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
