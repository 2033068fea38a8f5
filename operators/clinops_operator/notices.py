"""Announcements from handler threads to coroutines on the event loop that wait for them, keyed by object."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable, Iterator
from contextlib import contextmanager


class Notices:
    """A coroutine expects a key; a worker thread announces it; every coroutine expecting that key wakes.

    An announcement nobody expects is dropped: a waiter checks the state it waits for after it starts expecting,
    so nothing announced before that is needed.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[Hashable, set[asyncio.Event]] = {}

    @contextmanager
    def expecting(self, key: Hashable) -> Iterator[asyncio.Event]:
        """An event set by each :meth:`announce` of ``key`` while the block runs; on the event loop only."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiting.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiting.get(key, set())
            waiters.discard(event)
            if not waiters:
                self._waiting.pop(key, None)

    def announce(self, key: Hashable) -> None:
        """From any thread."""
        loop = self._loop
        if loop is None:
            return
        # A closed loop refuses: the operator is exiting and nobody waits any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake, key)

    def _wake(self, key: Hashable) -> None:
        for event in self._waiting.get(key, ()):
            event.set()
