"""The daemons' pause: woken by kopf's stop flag, and no exception left over when kopf sweeps the tasks at exit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import kopf
import pytest
from kopf._cogs.aiokits import aiotasks
from kopf._core.intents import stoppers

from clinops_operator.pausing import pause

Pause = Callable[[kopf.DaemonStopped, float], Awaitable[object]]


async def _poll_forever(stopped: kopf.DaemonStopped, pause_with: Pause) -> None:
    while not stopped:
        await pause_with(stopped, 0.05)


async def _kopf_time_limited_wait(stopped: kopf.DaemonStopped, seconds: float) -> object:
    return await stopped.wait(seconds)


async def _sweep_like_kopf_at_exit(pause_with: Pause) -> None:
    """A daemon kopf never signalled, swept as kopf's shutdown sweeps the tasks left over after its root tasks."""
    stopper = stoppers.DaemonStopper()
    daemon = asyncio.create_task(_poll_forever(stopper.async_waiter, pause_with))
    await asyncio.sleep(0.12)
    leftover = await aiotasks.all_tasks(ignored={asyncio.current_task()})  # type: ignore[arg-type]
    done, pending = await aiotasks.wait(leftover, timeout=0.2)
    cancelled, _ = await aiotasks.stop(pending, title="Hung", logger=logging.getLogger("test"), interval=1)
    assert daemon.done()
    await aiotasks.reraise(done | cancelled)


def test_a_swept_daemon_pausing_here_lets_the_operator_exit_cleanly() -> None:
    asyncio.run(_sweep_like_kopf_at_exit(pause))


def test_a_swept_daemon_on_kopfs_own_time_limit_fails_the_exit() -> None:
    # The failure this module exists for: kopf's helper task for the time limit ends with TimeoutError at every
    # poll, and the sweep re-raises it.
    with pytest.raises(TimeoutError):
        asyncio.run(_sweep_like_kopf_at_exit(_kopf_time_limited_wait))


def test_the_pause_ends_early_when_the_daemon_is_stopped() -> None:
    async def scenario() -> None:
        stopper = stoppers.DaemonStopper()
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.05, stopper.set, stoppers.DaemonStoppingReason.OPERATOR_EXITING)
        await pause(stopper.async_waiter, 30)
        assert stopper.async_waiter
        assert loop.time() - started < 30

    asyncio.run(scenario())


def test_the_pause_lasts_its_time_when_nobody_stops_the_daemon() -> None:
    async def scenario() -> None:
        stopper = stoppers.DaemonStopper()
        await pause(stopper.async_waiter, 0.05)
        assert not stopper.async_waiter

    asyncio.run(scenario())
