"""The Redis client's connect across a stall of the router's own loop (a long callback, a
collector pause): a Redis that answered in time while the loop was held up is connected, not
timed out. Timed out, the replica took Redis for lost and went on with its local state (an
outage, for limits meant per key and files kept where no other replica reads them) for nothing
Redis did."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from router_service.state._resp import RespClient
from tests.loop_clock import move_loop_clock

__all__ = ["move_loop_clock"]  # the fixture, used here

pytestmark = pytest.mark.timeout(20)


async def test_a_connect_across_a_stall_of_the_loop_is_made(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, move_loop_clock: Callable[[float], None]
) -> None:
    loop = asyncio.get_running_loop()
    connect = loop.sock_connect
    stalls = [0]

    async def sock_connect(sock: socket.socket, address: tuple[str, int]) -> None:
        stalls[0] += 1
        loop.call_soon(move_loop_clock, 10.0)  # held up 10 s once the connect is under way
        return await connect(sock, address)

    monkeypatch.setattr(loop, "sock_connect", sock_connect)
    client = RespClient(redis_url, connect_timeout_s=0.5)
    try:
        assert await client.execute("PING") == "PONG"
    finally:
        await client.aclose()
    assert stalls[0] == 1


async def test_a_redis_that_never_answers_still_times_out(
    redis_url: str, move_loop_clock: Callable[[float], None]
) -> None:
    listener = socket.socket()  # listens, never accepts: a connect waits on its backlog...
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    host, port = listener.getsockname()
    # ...but loopback completes the TCP connect at once: the login (a password) never answers.
    client = RespClient(f"redis://:secret@{host}:{port}", connect_timeout_s=0.05, timeout_s=30)
    try:
        with pytest.raises(TimeoutError):
            await client.execute("PING")
    finally:
        await client.aclose()
        listener.close()
