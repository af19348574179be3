"""A Redis at `maxclients` greets a new connection with `-ERR max number of clients reached`
and closes it: an outage that passes once connections free up, not the answer of the command
that read it. A write queued during the outage stays queued for the next replay (dropped as
"refused", a whole queue of releases was lost, one connect each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from router_service.clock import ManualClock
from router_service.state import (
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    StoreUnavailableError,
)

pytestmark = pytest.mark.timeout(20)

FULL = b"-ERR max number of clients reached\r\n"


@pytest.fixture
async def full_redis() -> AsyncIterator[str]:
    """A loopback server that answers every connection as a Redis at `maxclients` does."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(FULL)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(refuse, "127.0.0.1", 0)
    yield f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    listener.close()
    await listener.wait_closed()


@pytest.mark.parametrize("login", ["", ":pw@"], ids=["no-login", "login"])
async def test_a_full_redis_is_unreachable_not_a_refusal(full_redis: str, login: str) -> None:
    store = RedisStateStore.from_url(f"redis://{login}{full_redis}/0", prefix="p")
    try:
        with pytest.raises(StoreUnavailableError) as failed:
            await store.release("k", "lease")
        assert failed.value.refused is None
    finally:
        await store.aclose()


async def test_a_write_queued_while_redis_is_full_is_kept_for_the_next_replay(
    full_redis: str,
) -> None:
    clock = ManualClock()
    shared = RedisStateStore.from_url(f"redis://{full_redis}/0", prefix="p", clock=clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock, retry_interval_s=1)
    try:
        await store.release("k", "lease")  # queued
        assert store.degraded
        for _ in range(4):  # probes: each replay meets a full Redis again (or its hang-up)
            clock.advance(1.0)
            await store.held(["k"])
            assert store.degraded
            assert "1 writes queued" in store.detail()
    finally:
        await store.aclose()
