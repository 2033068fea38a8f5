"""`clinops stack`: run the bench (Kafka, MinIO, MLflow on MinIO) in the foreground or detached, and stop it."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clinops.config import data_dir
from clinops.errors import ClinopsError
from clinops.stack.process import pid_alive

app = typer.Typer(help="The local bench: Kafka, MinIO and an MLflow server on MinIO.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()

SUPERVISE_INTERVAL_S = 1.0
DETACH_TIMEOUT_S = 3600.0  # a cold start builds MinIO and fetches the Kafka jars first
DOWN_TIMEOUT_S = 120.0


def state_dir() -> Path:
    return data_dir() / "stack"


def state_file() -> Path:
    return state_dir() / "state.json"


def read_state() -> dict[str, Any] | None:
    """The running stack's state, or None when no supervisor is alive (a stale file is ignored)."""
    try:
        state: dict[str, Any] = json.loads(state_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state if pid_alive(int(state["pid"])) else None


def _write_state(state: dict[str, Any]) -> None:
    path = state_file()
    staged = path.with_suffix(".tmp")
    # The file holds the MinIO root credentials: readable by its owner only.
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        json.dump(state, sink, indent=2)
    staged.replace(path)


def _kill_leftovers(state: dict[str, Any]) -> None:
    """SIGKILL the component process groups of a supervisor that died without its teardown."""
    run_dir = str(state.get("run_dir", ""))
    for group in state.get("process_groups", []):
        try:
            command = Path(f"/proc/{int(group)}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        # Only a process still serving that run dir: the id may since have been reused by an unrelated process.
        if run_dir and run_dir in command:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(group), signal.SIGKILL)


def exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def _fail(message: str) -> typer.Exit:
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_foreground() -> None:
    from clinops.stack.bench import Stack

    if (running := read_state()) is not None:
        raise _fail(f"a stack is already running (pid {running['pid']}); stop it with `clinops stack down`")
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        _kill_leftovers(json.loads(state_file().read_text()))
    run_dir = state_dir() / "run"
    # Each `stack up` starts empty: the bench is for runs that create their own data.
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    stack = Stack(run_dir)
    # Written before starting, so a second `stack up` refuses instead of wiping this one's run dir.
    state: dict[str, Any] = {"pid": os.getpid(), "run_dir": str(run_dir), "process_groups": [], "env": None}
    _write_state(state)
    # SIGINT too: a shell starting this in the background may have set it to be ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    failed: str | None = None
    try:
        with console.status("Starting the stack") as status:
            stack.start(progress=status.update)
        state["process_groups"] = [pid for pid in (stack.kafka.pid, stack.minio.pid, stack.mlflow.pid) if pid]
        state["env"] = stack.env()
        _write_state(state)
        table = Table("component", "address", "log", title="clinops stack")
        for name, address, log in (
            ("Kafka", stack.kafka.bootstrap, stack.kafka.server_log),
            ("MinIO", stack.minio.endpoint, stack.minio.log),
            ("MLflow", stack.mlflow.uri, stack.mlflow.log),
        ):
            table.add_row(name, address, str(log.relative_to(run_dir)))
        out.print(table)
        out.print(f"Logs and data under {run_dir}", markup=False, highlight=False, soft_wrap=True)
        out.print('# To use it from another shell (or run `eval "$(clinops stack env)"`):')
        out.print(exports(stack.env()), markup=False, highlight=False, soft_wrap=True)
        sys.stdout.flush()
        console.print("Running; Ctrl-C stops everything.")
        idle = threading.Event()
        while failed is None:
            idle.wait(SUPERVISE_INTERVAL_S)
            failed = stack.failed_component()
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not cut the teardown short and leave processes behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        console.print("Stopping the stack")
        stack.stop()
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            if json.loads(state_file().read_text()).get("pid") == os.getpid():
                state_file().unlink()
    if failed is not None:
        raise _fail(f"{failed} exited; see its log under {run_dir}")


def _run_detached() -> None:
    from clinops.stack.process import ManagedProcess, StackError

    if (running := read_state()) is not None:
        raise _fail(f"a stack is already running (pid {running['pid']}); stop it with `clinops stack down`")
    state_dir().mkdir(parents=True, exist_ok=True)
    supervisor = ManagedProcess(
        "clinops stack supervisor",
        [sys.executable, "-m", "clinops.stack.cli", "up"],
        state_dir() / "supervisor.log",
        die_with_parent=False,  # it must outlive this command
    )
    supervisor.start()

    def ready() -> bool:
        state = read_state()
        return state is not None and state["pid"] == supervisor.pid and state["env"] is not None

    with console.status("Starting the stack (detached)"):
        try:
            supervisor.wait_until(ready, "a running stack", DETACH_TIMEOUT_S)
        except StackError as exc:
            supervisor.stop()
            raise _fail(str(exc)) from None
        except BaseException:
            supervisor.stop()
            raise
    state = read_state() or {}
    out.print(
        f"Stack running under pid {state['pid']} (log {state_dir() / 'supervisor.log'}); `clinops stack down` stops it"
    )
    out.print(exports(state["env"]), markup=False, highlight=False, soft_wrap=True)


@app.command()
def up(
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; `clinops stack down` stops it.")
    ] = False,
) -> None:
    """Start Kafka, MinIO and MLflow on free loopback ports; print their addresses and the env exports."""
    try:
        if detach:
            _run_detached()
        else:
            _run_foreground()
    except (ClinopsError, OSError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def down() -> None:
    """Stop a stack started by `clinops stack up` (detached or in another terminal)."""
    from clinops.stack.process import poll_until

    try:
        state = json.loads(state_file().read_text())
    except FileNotFoundError:
        out.print("No stack is running.")
        return
    supervisor = int(state["pid"])
    if pid_alive(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        with console.status(f"Stopping the stack (pid {supervisor})"):
            poll_until(lambda: not pid_alive(supervisor), DOWN_TIMEOUT_S)
    _kill_leftovers(state)
    with contextlib.suppress(FileNotFoundError):
        state_file().unlink()
    out.print("Stack stopped.")


@app.command()
def env() -> None:
    """Print the running stack's environment as shell exports: eval "$(clinops stack env)"."""
    state = read_state()
    if state is None:
        raise _fail("no stack is running; start one with `clinops stack up --detach`")
    if state["env"] is None:
        raise _fail(f"the stack (pid {state['pid']}) is still starting")
    out.print(exports(state["env"]), markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
