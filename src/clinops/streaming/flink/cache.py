"""Where the Flink jars live: ``~/.cache/clinops/flink-<version>/{jars,plugins}``, filled by ``make flink-jars``."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "CLINOPS_CACHE"
# A jar directory chosen by hand (e.g. in a Flink image) instead of the per-version cache.
JARS_ENV = "CLINOPS_FLINK_JARS"


def jar_cache(version: str) -> Path:
    override = os.environ.get(JARS_ENV)
    if override:
        return Path(override).expanduser()
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "clinops").expanduser()
    return root / f"flink-{version}"


def jars(cache: Path) -> list[Path]:
    return sorted((cache / "jars").glob("*.jar"))
