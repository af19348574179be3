"""A stream its caller drops without closing it (a `break` out of the loop, no `with` block),
from both clients over a real channel to a real router: the call is cancelled, the router
leaves the upstream request and gives its key back, as when the stream is closed."""

from __future__ import annotations

import asyncio

import pytest

from clients import RouterClient, SyncRouterClient
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.router_service.auth.helpers import chat_stream
from tests.router_service.server.test_leases import no_leases

pytestmark = pytest.mark.timeout(60)


async def _left_by_the_router(router: RouterHandle, fake: FakeUpstream) -> None:
    [record] = fake.state.records  # the stream's, which sent a chunk
    await fake.state.wait_for(lambda: record.client_disconnected, what="the upstream left")
    await no_leases(router)
    assert record.chunks_sent < 200


async def test_an_async_stream_dropped_unclosed_is_cancelled(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # Its grpc.aio call ran on: the router kept the upstream request and its key until the
    # model finished (here: never), the async client alone of the two.
    fake.state.set_scenario(Scenario(chunks=200, held_after_chunks=2))  # under way until cut
    async with RouterClient(router.server.address) as client:
        stream = client.chat_stream(chat_stream(), timeout=30)
        async for event in stream:
            if event.HasField("chunk"):
                break
        assert await router.leases_held() == 1
        del stream
        await _left_by_the_router(router, fake)


async def test_a_sync_stream_dropped_unclosed_is_cancelled(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(chunks=200, held_after_chunks=2))
    client = SyncRouterClient(router.server.address)

    def read_one_chunk() -> None:
        for event in client.chat_stream(chat_stream(), timeout=30):
            if event.HasField("chunk"):
                break

    try:
        await asyncio.to_thread(read_one_chunk)
        await _left_by_the_router(router, fake)
    finally:
        client.close()
