"""The Redis client's connects (`_resp.py`, `RespClient.connection`): one per slot at a time,
its failure shared by the callers that waited for it."""

from __future__ import annotations

import asyncio

import pytest

from router_service.state._resp import RespClient

pytestmark = pytest.mark.timeout(20)


async def test_callers_waiting_for_a_connect_that_fails_share_its_failure() -> None:
    """One connect per slot, the others wait for it: when it fails, they fail with it rather
    than each trying again in turn (behind a Redis that swallows connects, the last of N
    callers waited N connect timeouts; refused, N connects in a row)."""
    accepted = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()  # before the login's answer: the connect fails

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = RespClient(f"redis://:pw@127.0.0.1:{port}/0", connections=1, connect_timeout_s=30)
    try:
        calls = [asyncio.ensure_future(client.execute("PING")) for _ in range(5)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results), results
        assert accepted == 1
        # A later call tries again (the next one after the failure, not its waiters).
        with pytest.raises(ConnectionError):
            await client.execute("PING")
        assert accepted == 2
    finally:
        await client.aclose()
        listener.close()
        await listener.wait_closed()
