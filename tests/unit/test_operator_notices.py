"""Notices: a handler thread's announcement wakes exactly the coroutines expecting its key, and nothing leaks."""

from __future__ import annotations

import asyncio
import threading

from clinops_operator.notices import Notices


def test_an_announcement_from_a_thread_wakes_the_coroutines_expecting_its_key_only() -> None:
    async def scenario() -> None:
        notices = Notices()
        with (
            notices.expecting(("ns", "a")) as first,
            notices.expecting(("ns", "a")) as second,
            notices.expecting(("ns", "b")) as other,
        ):
            announcer = threading.Thread(target=notices.announce, args=(("ns", "a"),))
            announcer.start()
            await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), timeout=30)
            announcer.join()
            await asyncio.sleep(0)
            assert not other.is_set()
        assert notices._waiting == {}

    asyncio.run(scenario())


def test_an_announcement_nobody_expects_is_dropped() -> None:
    notices = Notices()
    notices.announce(("ns", "a"))  # no loop yet: nothing to wake

    async def scenario() -> None:
        with notices.expecting(("ns", "a")):
            pass
        notices.announce(("ns", "a"))
        await asyncio.sleep(0)
        with notices.expecting(("ns", "a")) as late:
            await asyncio.sleep(0)
            assert not late.is_set()

    asyncio.run(scenario())
    notices.announce(("ns", "a"))  # the loop closed: still no error
