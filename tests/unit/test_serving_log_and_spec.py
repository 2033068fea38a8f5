"""The prediction log never blocks or loses silently; the ModelDeployment spec rejects what cannot be served."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest

from clinops.errors import ClinopsError
from clinops.lake.bronze import iter_bronze
from clinops.lake.store import Lake
from clinops.serving.metrics import ServerMetrics
from clinops.serving.prediction_log import LakeSink, PredictionLog
from clinops.specs.common import parse_resource
from clinops.specs.model_deployment import ModelDeployment

NAMES = ["age", "lactate"]


def submit(log: PredictionLog, rows: int, *, start: int = 0) -> None:
    X = np.array([[70.0 + i, np.nan] for i in range(rows)])
    log.submit(
        request_id=f"r{start}",
        model="m",
        versions=["3"] * rows,
        variants=["primary"] * rows,
        keys=[f"p-{start + i}" for i in range(rows)],
        feature_names=NAMES,
        X=X,
        scores=np.linspace(0, 1, rows),
        sample_rate=1.0,
    )


def wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def test_records_land_in_bronze_with_null_for_missing_features(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    metrics = ServerMetrics()
    log = PredictionLog(LakeSink(lake, "predictions"), metrics, buffer_size=100, flush_seconds=0.05)
    submit(log, 3)
    submit(log, 2, start=3)
    log.close()
    lines = [orjson.loads(line) for _, data in iter_bronze(lake, "predictions") for line in data.splitlines()]
    assert [r["key"] for r in lines] == ["p-0", "p-1", "p-2", "p-3", "p-4"]
    assert lines[0]["features"] == {"age": 70.0, "lactate": None}
    assert metrics.log_written._value.get() == 5


class FlakySink:
    """Fails until told to recover, then records what it was given."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.written: list[bytes] = []

    def write(self, records: Sequence[tuple[int, bytes, bytes]]) -> None:
        if not self.up.is_set():
            raise OSError("sink down")
        self.written.extend(value for _, _, value in records)

    def close(self) -> None:
        pass


def test_a_down_sink_keeps_what_fits_drops_the_rest_with_a_count_and_never_blocks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The root logger's level is whatever an earlier test in this worker left it at (kopf's runner sets it).
    caplog.set_level(logging.WARNING, logger="clinops.serving.prediction_log")
    sink, metrics = FlakySink(), ServerMetrics()
    log = PredictionLog(sink, metrics, buffer_size=10, flush_seconds=0.02)
    started = time.perf_counter()
    for start in range(0, 16, 4):
        submit(log, 4, start=start)
    assert time.perf_counter() - started < 1  # appends only; a generous bound that only a blocking write breaks
    time.sleep(0.1)  # a few failed flushes
    sink.up.set()
    wait_for(lambda: len(sink.written) >= 10)
    log.close()
    assert len(sink.written) == 10
    assert metrics.log_dropped.labels("buffer_full")._value.get() == 6
    assert [orjson.loads(v)["key"] for v in sink.written] == [f"p-{i}" for i in range(10)]
    assert "Prediction log write failed" in caplog.text


def deployment(**spec: object) -> dict[str, object]:
    return {
        "apiVersion": "clinops.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "risk"},
        "spec": {"model": {"name": "readmission-risk", "alias": "champion"}, **spec},
    }


def test_the_sample_parses_with_defaults() -> None:
    md = parse_resource(ModelDeployment, deployment(canary={"version": 4, "trafficPercent": 10}))
    assert md.spec.model.uri == "models:/readmission-risk@champion"
    assert md.spec.canary is not None
    assert md.spec.canary.sticky_key == "patient_id"
    assert md.spec.prediction_log.topic == "predictions"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": {"name": "m"}}, "spec.model: Value error, set exactly one of alias or version"),
        ({"model": {"name": "m", "alias": "a", "version": 2}}, "set exactly one of alias or version"),
        ({"canary": {"alias": "champion", "trafficPercent": 5}}, "canary names the same alias"),
        ({"canary": {"alias": "c", "trafficPercent": 150}}, "spec.canary.trafficPercent"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}, "minReplicas must not exceed maxReplicas"),
        ({"predictionLog": {"sampleRate": 2}}, "spec.predictionLog.sampleRate"),
        ({"replica": 2}, "spec.replica: Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict[str, object], message: str) -> None:
    document = deployment()
    document["spec"] = {**document["spec"], **spec}  # type: ignore[dict-item]
    with pytest.raises(ClinopsError, match=message):
        parse_resource(ModelDeployment, document)
