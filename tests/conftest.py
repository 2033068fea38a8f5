"""Shared fixtures; each test is marked with its tier from the folder it lives in."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinops.data.generator import Cohort, GeneratorConfig, generate
from clinops.lake.store import Lake

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for tier in TIERS:
            if f"tests/{tier}/" in item.path.as_posix():
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def small_cohort() -> Cohort:
    return generate(GeneratorConfig(patients=300, seed=11, days=30))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")
