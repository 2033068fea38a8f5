"""Fetch the stack's binaries from the package registries into a per-version cache outside the repo."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clinops.stack.process import StackError

KAFKA_VERSION = "4.4.0"
# MinIO tags (RELEASE.<date>) are not semver, so the Go module proxy serves the commit as a pseudo-version.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_MODULE = "github.com/minio/minio"
# The MinIO client the chart's bucket Job runs; untagged too, its newest commit on the proxy.
MC_VERSION = "v0.0.0-20250313080218-cf909e1063a9"
MC_MODULE = "github.com/minio/mc"

KAFKA_POM = Path(__file__).resolve().parents[3] / "scripts" / "kafka" / "pom.xml"
FETCH_TIMEOUT_S = 1800


def cache_root() -> Path:
    return Path(os.environ.get("CLINOPS_CACHE") or Path.home() / ".cache" / "clinops").expanduser()


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """One fetch per target at a time across processes (a test session and `clinops stack up` may race)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(command: list[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    try:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: {command[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: no result after {FETCH_TIMEOUT_S}s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise StackError(f"{what} failed ({result.returncode}):\n{output}")


def _publish(staging: Path, target: Path) -> None:
    # A complete directory appears under its final name in one rename, so an interrupted fetch is never reused.
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def kafka_libs(version: str = KAFKA_VERSION) -> Path:
    """The directory of the broker's runtime jars (`kafka_2.13` and its dependencies), fetched with Maven once."""
    home = cache_root() / f"kafka-{version}"
    libs = home / "libs"
    if (libs / f"kafka_2.13-{version}.jar").is_file():
        return libs
    with _exclusive(home):
        if (libs / f"kafka_2.13-{version}.jar").is_file():
            return libs
        if not KAFKA_POM.is_file():
            raise StackError(f"{KAFKA_POM} not found: the Kafka classpath is fetched from the clinops source tree")
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        _run(
            [
                "mvn",
                "-q",
                "-B",
                f"-Dkafka.version={version}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            f"fetching Kafka {version} from Maven Central",
            cwd=KAFKA_POM.parent,
        )
        _publish(staging, libs)
    return libs


def _go_binary(module: str, version: str, name: str) -> Path:
    """The binary ``name`` of a Go module, built once with `go install` from the Go module proxy."""
    home = cache_root() / f"{name}-{version}"
    binary = home / name
    if binary.is_file():
        return binary
    with _exclusive(home):
        if binary.is_file():
            return binary
        staging = home.with_name(f"{home.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        # -modcacherw keeps the module cache deletable by a plain `rm -rf`.
        env = {**os.environ, "GOBIN": str(staging), "GOFLAGS": "-modcacherw"}
        _run(["go", "install", f"{module}@{version}"], f"building {name} {version} with go install", env=env)
        _publish(staging, home)
    return binary


def minio_binary(version: str = MINIO_VERSION) -> Path:
    """The `minio` server binary."""
    return _go_binary(MINIO_MODULE, version, "minio")


def mc_binary(version: str = MC_VERSION) -> Path:
    """The `mc` client binary."""
    return _go_binary(MC_MODULE, version, "mc")
