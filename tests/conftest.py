"""Shared fixtures; each test is marked with its tier from the folder it lives in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinops.data.generator import Cohort, GeneratorConfig, generate
from clinops.lake.store import Lake
from clinops.stack.kafka import KafkaBroker

# MLflow's telemetry thread sets and unsets an environment variable while other threads iterate os.environ (every
# requests call does, for proxies): a KeyError at random in whichever test shares the process.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

TIERS = ("unit", "integration", "e2e")
# Workers take whole files in collection order: the longest files (measured) go first and the many short unit files
# fill the end, so no worker is still on a five-minute file after the others are done.
LONGEST_FIRST = (
    "integration/test_training_pipeline.py",
    "integration/test_flink_silver.py",
    "integration/test_serving.py",
    "integration/test_flink_drift.py",
    "integration/test_stack.py",
    "integration/test_ingest.py",
)


def _schedule(item: pytest.Item) -> tuple[int, int]:
    path = item.path.as_posix()
    for rank, name in enumerate(LONGEST_FIRST):
        if path.endswith(name):
            return 0, rank
    return (2, 0) if "tests/unit/" in path else (1, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for tier in TIERS:
            if f"tests/{tier}/" in item.path.as_posix():
                item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=_schedule)  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def small_cohort() -> Cohort:
    return generate(GeneratorConfig(patients=300, seed=11, days=30))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real single-node KRaft broker with the platform's topics; tests may restart or kill it."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
