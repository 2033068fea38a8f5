"""Loopback ports for the stack's servers: free when chosen and never from the range outgoing connections use."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinops.stack import process
from clinops.stack.process import StackError, free_port


def test_a_port_is_free_and_outside_the_ephemeral_range() -> None:
    low, high = (int(part) for part in Path(process.EPHEMERAL_RANGE_FILE).read_text().split())
    ports = {free_port() for _ in range(50)}
    assert all(not low <= port <= high for port in ports)
    assert all(port >= process.PRIVATE_PORTS_FLOOR for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    # Random picks: fifty calls landing on a handful of ports would mean parallel callers collide.
    assert len(ports) > 40


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port a listening socket holds for the test's length."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def test_a_port_in_use_is_never_returned(monkeypatch: pytest.MonkeyPatch, held_port: int) -> None:
    monkeypatch.setattr(process, "_candidate_ports", lambda: range(held_port, held_port + 2))
    assert {free_port() for _ in range(30)} == {held_port + 1}


def test_no_free_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, held_port: int) -> None:
    monkeypatch.setattr(process, "_candidate_ports", lambda: range(held_port, held_port + 1))
    with pytest.raises(StackError, match="no free loopback port"):
        free_port()
