"""The platform image's Dockerfile agrees with the repository's pins and with what the operator expects in it."""

from __future__ import annotations

import re
from pathlib import Path

from clinops.streaming.flink.cache import FUNCTIONS_JAR
from clinops_operator.builders.drift_monitor import DriftConfig
from clinops_operator.settings import DEFAULT_FLINK_JAR

ROOT = Path(__file__).parents[2]
DOCKERFILE = (ROOT / "images" / "platform" / "Dockerfile").read_text()


def _arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert match, f"the Dockerfile declares no default for {name}"
    return match.group(1)


def test_flink_is_the_stream_envs_pin_and_the_operators_python_jar() -> None:
    pin = re.search(r'"apache-flink==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin
    assert _arg("FLINK_VERSION") == pin.group(1)
    # The FlinkDeployment's jarURI names the PythonDriver jar of the image's Flink.
    assert DEFAULT_FLINK_JAR.endswith(f"/flink-python-{pin.group(1)}.jar")


def test_uv_is_the_makefiles() -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile
    assert _arg("UV_VERSION") == makefile.group(1)


def test_the_drift_jobs_interpreter_and_jars_are_where_the_image_puts_them() -> None:
    assert DriftConfig.python == "/opt/clinops/.venv-flink/bin/python"
    assert "UV_PROJECT_ENVIRONMENT=.venv-flink" in DOCKERFILE
    assert "WORKDIR /opt/clinops" in DOCKERFILE
    assert "CLINOPS_FLINK_JARS=/opt/clinops/flink" in DOCKERFILE
    # Both environments come from the lock, as on the bench.
    assert DOCKERFILE.count("uv sync --frozen") == 4


def test_the_image_and_the_makefile_ship_the_drift_jobs_java_functions() -> None:
    # The job refuses to start without this jar (FUNCTIONS_JAR), so both builds must put it among the jars.
    assert "-f /build/flink-udf/pom.xml package" in DOCKERFILE
    assert f"/build/flink-udf/out/{FUNCTIONS_JAR} /opt/clinops/flink/jars/" in DOCKERFILE
    makefile = (ROOT / "Makefile").read_text()
    assert f"$(FLINK_UDF_BUILD)/{FUNCTIONS_JAR} $(FLINK_CACHE)/jars/" in makefile
    assert "<finalName>clinops-flink-udf</finalName>" in (ROOT / "scripts" / "flink-udf" / "pom.xml").read_text()
