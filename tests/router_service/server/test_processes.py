"""The router-process harness: a port taken between `free_port`'s probe and the router's bind (a
parallel worker's socket) is chosen again, not reported as a router that cannot serve."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.helpers import free_port
from tests.router_service.server import processes
from tests.router_service.server.test_shutdown import _config


async def test_a_port_taken_before_the_router_binds_it_is_chosen_again(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        chosen = [taken.getsockname()[1]]
        monkeypatch.setattr(processes, "free_port", lambda: chosen.pop() if chosen else free_port())
        spawned: list[asyncio.subprocess.Process] = []
        async with processes.router_process(_config(fake, 1), tmp_path, on_spawn=spawned.append):
            assert len(spawned) == 2
            assert spawned[0].returncode == 2  # the first refused the taken port
