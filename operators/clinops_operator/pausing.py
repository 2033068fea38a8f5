"""The daemons' pause between polls: woken by the stop flag, and leaving nothing behind when cancelled instead."""

from __future__ import annotations

import asyncio
import contextlib

import kopf


async def pause(stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep up to ``seconds``, returning early when kopf asks the daemon to stop.

    Not ``await stopped.wait(seconds)``: kopf runs that time limit in a helper task of its own, which ends with a
    TimeoutError whenever the time is up. A daemon that kopf spawns while the operator is already stopping (an
    object's handler finishing just after SIGTERM) is never signalled; it is cancelled with the other leftover
    tasks, and kopf then re-raises the helper's TimeoutError from its shutdown, so the operator exits with an error.
    Here the time limit belongs to this task: the helper only ever ends by the flag or by cancellation.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopped.wait()
