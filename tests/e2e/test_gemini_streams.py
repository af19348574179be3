"""Gemini API streams that go quiet mid-way: Google's SDKs read a `?alt=sse` stream as `data:`
events only (google-genai parses any other line as JSON; the JS SDK matches `^data: ` at the
start of what it has buffered), so the router's heartbeats must not reach that wire."""

from __future__ import annotations

import asyncio

import httpx
from google import genai

from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.conftest import open_client
from tests.e2e.stream_harness import StartEdge, chat_params
from tests.e2e.test_gemini_sdk import config


async def _heartbeats(router: RouterHandle, fake: FakeUpstream, count: int) -> None:
    """A second stream, held upstream as the first is, read until the router sent it `count`
    heartbeats: the first stream, held before it with the same interval, had its first
    heartbeat sent before these (the loop's timers fire in order)."""
    call = router.stub.ChatStream(rs.ChatStreamRequest(params=chat_params("witness")))
    try:
        await fake.state.wait_for(lambda: fake.state.held == 2, what="the witness held")
        seen = 0
        async for message in call:
            seen += message.WhichOneof("event") == "heartbeat"
            if seen == count:
                return
    finally:
        call.cancel()


async def test_a_stream_quiet_long_enough_for_heartbeats_reads_whole_in_the_sdk(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    # A frozen clock: the stall window never ends the held streams; heartbeats come every 10 ms.
    router = await start_router(config(fake, streams={"heartbeat_s": 0.01}), clock=ManualClock())
    edge = await start_edge(router)
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    async with httpx.AsyncClient(timeout=10) as http:
        gemini: genai.Client = open_client(edge.base_url, http)
        stream = await gemini.aio.models.generate_content_stream(
            model="chain", contents="one two three"
        )
        reading = asyncio.ensure_future(_texts(stream))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the stream held")
        await _heartbeats(router, fake, 3)
        fake.state.release()
        texts = await reading
    assert "".join(texts) == "Echo: one two three"


async def _texts(stream: object) -> list[str]:
    return [chunk.text or "" async for chunk in stream]  # type: ignore[attr-defined]
