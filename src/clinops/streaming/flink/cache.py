"""Where the Flink jars live: ``~/.cache/clinops/flink-<version>/{jars,plugins}``, filled by ``make flink-jars``."""

from __future__ import annotations

import os
from pathlib import Path

from clinops.stack.fetch import cache_root

# A jar directory chosen by hand (e.g. in a Flink image) instead of the per-version cache.
JARS_ENV = "CLINOPS_FLINK_JARS"
# The drift job's Java functions, built from scripts/flink-udf by `make flink-jars` into the same jars folder.
FUNCTIONS_JAR = "clinops-flink-udf.jar"


def jar_cache(version: str) -> Path:
    override = os.environ.get(JARS_ENV)
    if override:
        return Path(override).expanduser()
    return cache_root() / f"flink-{version}"


def jars(cache: Path) -> list[Path]:
    return sorted((cache / "jars").glob("*.jar"))
