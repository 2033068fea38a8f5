"""Child processes of the stack: free loopback ports, process-group lifecycle and deadline-bound readiness polls."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from clinops.errors import ClinopsError

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.2
GROUP_EXIT_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000
EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
LINUX_EPHEMERAL_RANGE = (32768, 60999)
# Below this lie the well-known and commonly configured ports (8080, 9000, 9092…) a user's own servers may hold.
PRIVATE_PORTS_FLOOR = 15000
# The OS source, not the module-level generator: processes forked with the same seed would pick the same ports.
_PICKER = random.SystemRandom()


class StackError(ClinopsError):
    """A stack component could not be fetched, started or reached."""


def _candidate_ports() -> range:
    try:
        low, high = (int(part) for part in Path(EPHEMERAL_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        low, high = LINUX_EPHEMERAL_RANGE
    return range(PRIVATE_PORTS_FLOOR, low) if low - PRIVATE_PORTS_FLOOR >= 1000 else range(high + 1, 65536)


def free_port() -> int:
    """A loopback port free now, chosen outside the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the range it also uses for every outgoing connection, so
    between this check and the server's own bind a client connection elsewhere (a Kafka producer, an HTTP pool)
    could take it: the server then fails with "address already in use". Ports below the range are only ever taken
    by an explicit bind, and picking them at random keeps parallel callers apart.
    """
    candidates = _candidate_ports()
    for _ in range(200):
        port = _PICKER.choice(candidates)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise StackError(f"no free loopback port found in {candidates.start}-{candidates.stop - 1}")


def log_tail(*logs: Path, chars: int = LOG_TAIL_CHARS) -> str:
    parts = []
    for log in logs:
        try:
            text = log.read_text(errors="replace")
        except FileNotFoundError:
            continue
        parts.append(f"--- {log} ---\n{text[-chars:]}")
    return "\n".join(parts) or "(no log written)"


def poll_until(ready: Callable[[], bool], timeout: float) -> bool:
    """Whether ``ready`` held before ``timeout`` seconds passed, checking every POLL_INTERVAL_S."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


class ManagedProcess:
    """One child in its own session, so stopping it also stops whatever it forked (JVM helpers, MLflow workers).

    With ``die_with_parent`` the kernel sends the child SIGTERM when the thread that started it ends, so a test
    session or supervisor killed before its teardown (SIGKILL, a timeout) leaves no server behind. Start such a
    process from a thread that outlives it: the main thread, not a short-lived worker.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        extra_logs: Sequence[Path] = (),
        die_with_parent: bool = True,
    ) -> None:
        self.name = name
        self.command = list(command)
        # setpriv (util-linux) sets the parent-death signal and execs, so the command keeps its own pid; without it
        # the process only dies with its parent when stopped explicitly.
        setpriv = shutil.which("setpriv") if die_with_parent else None
        if setpriv is not None:
            self.command = [setpriv, "--pdeathsig", "TERM", "--", *self.command]
        self.log = log
        self.logs = (log, *extra_logs)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # Append: a restarted process keeps the history of the previous run in the same file.
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        # The group outlives its leader while any member lives; a gone group is already what we want.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def _wait_group_gone(self) -> None:
        # SIGKILL is delivered asynchronously: a member may still hold its ports for a moment after killpg returns,
        # and a restart on the same port would then fail to bind.
        assert self.process is not None
        group = self.process.pid
        if not poll_until(lambda: not live_group_members(group), GROUP_EXIT_TIMEOUT_S):
            raise StackError(f"{self.name}: processes {live_group_members(group)} survived SIGKILL")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM to the whole group, SIGKILL if it has not exited within ``timeout``."""
        if self.process is None:
            return None
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        # Children that ignored SIGTERM must not outlive the leader.
        self._signal_group(signal.SIGKILL)
        self._wait_group_gone()
        return self.process.returncode

    def kill(self) -> int | None:
        """SIGKILL to the whole group: a crash, with no chance to flush or deregister."""
        if self.process is None:
            return None
        self._signal_group(signal.SIGKILL)
        code = self.process.wait()
        self._wait_group_gone()
        return code

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll ``ready`` until it holds; fail with the log tail on deadline or when the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise StackError(f"{self.name} exited with {code} before {what}:\n{log_tail(*self.logs)}")
            if ready():
                return
            if time.monotonic() >= deadline:
                raise StackError(f"{self.name}: no {what} after {timeout:.0f}s:\n{log_tail(*self.logs)}")
            time.sleep(POLL_INTERVAL_S)

    def wait_http_ok(self, url: str, timeout: float = READY_TIMEOUT_S) -> None:
        self.wait_until(lambda: http_ok(url), f"HTTP 200 from {url}", timeout)


def _stat_after_name(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...), None when the pid is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def pid_alive(pid: int) -> bool:
    # A zombie has finished: where PID 1 does not reap orphans, it would otherwise look alive forever.
    fields = _stat_after_name(pid)
    return fields is not None and fields[0] != "Z"


def live_group_members(group: int) -> list[int]:
    """Pids in process group ``group`` that have not exited."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = _stat_after_name(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = READY_TIMEOUT_S) -> None:
    """Wait for HTTP 200 from a process started elsewhere; fail with its log tail on deadline or early exit."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise StackError(f"server exited with {process.returncode}:\n{log_tail(log)}")
        if http_ok(url):
            return
        if time.monotonic() >= deadline:
            raise StackError(f"server not healthy at {url} after {timeout:.0f}s:\n{log_tail(log)}")
        time.sleep(POLL_INTERVAL_S)
