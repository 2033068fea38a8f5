"""``clinops-operator`` as users run it, a process of its own, for the e2e tests that need a running operator."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from clinops.stack.process import ManagedProcess, free_port


def operator_process(
    kubeconfig: Path, namespace: str, log: Path, env: Mapping[str, str | None], *, liveness_port: int | None = None
) -> ManagedProcess:
    """The operator watching ``namespace``; ``env`` adds variables to this process's own, a None value removes one.

    A process rather than kopf's in-process runner: SIGKILL is then a real crash, and nothing the operator opens
    (aiohttp sessions, Kafka consumers, MLflow pools) is left for this process's garbage collector to find.
    """
    environment = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    liveness = "" if liveness_port is None else f"http://127.0.0.1:{liveness_port}/healthz"
    executable = Path(sys.executable).with_name("clinops-operator")
    command = [str(executable), "--namespace", namespace, "--liveness", liveness]
    return ManagedProcess("operator", command, log, env=environment)


@contextmanager
def running_operator(
    kubeconfig: Path, namespace: str, log: Path, env: Mapping[str, str | None]
) -> Iterator[ManagedProcess]:
    """The operator, once kopf answers its liveness probe; on exit it is stopped and must have logged no traceback."""
    port = free_port()
    process = operator_process(kubeconfig, namespace, log, env, liveness_port=port)
    process.start()
    try:
        # kopf serves the probe only after the startup handlers ran, so the handlers are in place from here on.
        process.wait_http_ok(f"http://127.0.0.1:{port}/healthz", timeout=90)
        yield process
    finally:
        code = process.stop()
    output = log.read_text()
    # Handlers that failed and were retried leave a traceback even when the test's expectations held.
    assert "Traceback" not in output, output[-5000:]
    assert code == 0, output[-5000:]
