"""Where the Flink jars live: ``~/.cache/clinops/flink-<version>/{jars,plugins}``, filled by ``make flink-jars``."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
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


def missing_classes(cache: Path, classes: Iterable[str]) -> list[str]:
    """The Java classes (dotted names) that none of the cache's jars holds."""
    entries: set[str] = set()
    for jar in jars(cache):
        with zipfile.ZipFile(jar) as archive:
            entries.update(archive.namelist())
    return sorted(name for name in classes if name.replace(".", "/") + ".class" not in entries)
