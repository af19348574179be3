"""Calls their caller leaves, from both clients over a real channel to a real router: a stream
dropped without closing it (a `break` out of the loop, no `with` block) is cancelled, and the
router leaves the upstream request and gives its key back, as when the stream is closed; a
client closed under its calls ends them alike in both clients."""

from __future__ import annotations

import asyncio

import pytest

from clients import RouterClient, RouterError, SyncRouterClient
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.router_service.auth.helpers import chat, chat_stream
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


async def test_a_client_closed_under_a_call_ends_it_alike_in_both_clients(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    # The blocking client's ended with gRPC's own text ("Channel closed!"), `bare` as a status
    # from no router, where the async client's says it was cancelled on this side.
    fake.state.hold()
    client = RouterClient(router.server.address)
    call = asyncio.ensure_future(client.chat(chat(), timeout=30))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    await client.aclose()
    with pytest.raises(RouterError) as async_end:
        await call
    await fake.state.wait_for(lambda: fake.state.held == 0)

    sync = SyncRouterClient(router.server.address)
    sync_call = asyncio.ensure_future(asyncio.to_thread(sync.chat, chat(), timeout=30))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    await asyncio.to_thread(sync.close)
    with pytest.raises(RouterError) as sync_end:
        await sync_call
    assert sync_end.value.details == async_end.value.details
    assert (sync_end.value.reason, sync_end.value.details.bare) == ("CANCELLED", False)


async def test_a_client_closed_under_a_stream_ends_it_alike_in_both_clients(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(chunks=200, held_after_chunks=2))
    client = RouterClient(router.server.address)
    stream = client.chat_stream(chat_stream(), timeout=30)
    async for event in stream:
        if event.HasField("chunk"):
            break
    await client.aclose()
    with pytest.raises(RouterError) as async_end:
        await stream.__anext__()
    await no_leases(router)

    sync = SyncRouterClient(router.server.address)
    sync_stream = sync.chat_stream(chat_stream(), timeout=30)

    def read_past_a_chunk() -> None:
        for event in sync_stream:
            if event.HasField("chunk"):
                sync.close()  # from the reading thread: the stream, not the client, is read on

    with pytest.raises(RouterError) as sync_end:
        await asyncio.to_thread(read_past_a_chunk)
    assert sync_end.value.details == async_end.value.details
