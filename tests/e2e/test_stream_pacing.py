"""Each chunk reaches the caller as the upstream sends it, before the upstream sends the next:
nothing on the way (the router's chunk batching, the local channel's queue, the edge's SSE
relay and its one-write head) holds a chunk back for the ones behind it. The upstream is
stepped (`Scenario.stepped_chunks`: it waits before each event for the test's release), so a
chunk held anywhere on the way is seen as missing at the caller while the upstream waits.
No heartbeat comes meanwhile (`QUIET`): one would push a held chunk out behind it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clients import LocalChannel, RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import (
    BODY,
    QUIET,
    STEPPED,
    STEPPED_ARRIVALS,
    OpenStack,
    chat_params,
    step_through,
    stream_config,
)


@pytest.mark.parametrize("in_process", [True, False], ids=["one-process", "two-process"])
async def test_each_chunk_reaches_the_http_caller_before_the_next_is_sent(
    open_stack: OpenStack, fake: FakeUpstream, in_process: bool
) -> None:
    stack = await open_stack(in_process=in_process, **QUIET)
    fake.state.set_scenario(STEPPED)
    body = bytearray()

    async def read() -> None:
        async with stack.http.stream("POST", "/v1/chat/completions", json=BODY) as response:
            assert response.status_code == 200
            async for part in response.aiter_bytes():
                body.extend(part)

    reader = asyncio.create_task(read())
    try:
        await step_through(fake, lambda: bytes(body).count(b"data: {"), reader)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert bytes(body).endswith(b"data: [DONE]\n\n")
    await stack.settled()


async def _chunks(stream: AsyncIterator[pb.ChatStreamResponse], counted: list[int]) -> None:
    async for message in stream:
        kind = message.WhichOneof("event")
        if kind == "chunk":
            counted[0] += 1
        elif kind == "chunks":
            counted[0] += len(message.chunks.chunks)


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "over-the-port"])
@pytest.mark.parametrize("batch", [True, False], ids=["batched", "one-by-one"])
async def test_each_chunk_reaches_the_grpc_caller_before_the_next_is_sent(
    fake: FakeUpstream, start_router: StartRouter, in_process: bool, batch: bool
) -> None:
    """ChatStream as the edge calls it (`batch_chunks`, the route on the first chunks) and
    plain, over the router's port and in-process (`LocalChannel`)."""
    router = await start_router(stream_config(fake.base_url, **QUIET))
    fake.state.set_scenario(STEPPED)
    request = pb.ChatStreamRequest(
        params=chat_params(), batch_chunks=batch, route_on_first_message=batch
    )
    counted = [0]
    local = LocalChannel(router.server.in_process) if in_process else None
    target = "in-process" if in_process else router.server.address
    async with RouterClient(target, channel=local) as client:

        async def read() -> None:
            async with client.chat_stream(request) as stream:
                await _chunks(stream, counted)

        reader = asyncio.create_task(read())
        try:
            await step_through(fake, lambda: counted[0], reader)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    assert counted[0] == STEPPED_ARRIVALS[-1]
