"""The StreamGuard over each upstream transport, against the fake upstream on loopback: reads that
time out by cancelling their task (httpx's own transport, httpcore on anyio) end the read, never
the caller's work between two batches, and a read that yields the loop a turn first (anyio does,
before each read) neither breaks a batch nor passes for silence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from clients import chunk_from_openai
from clients.switchboard.v1 import chat_pb2
from router_service.clock import SYSTEM_CLOCK
from router_service.config import HttpConfig
from router_service.engine._stream_guard import Idle, StreamGuard, has_finish
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import CallRecord, FakeUpstream, Scenario
from router_service.outcomes import Outcome
from router_service.providers import _sse, create_http_client, reads_cancel_their_task

pytestmark = pytest.mark.timeout(20)

Chunk = chat_pb2.ChatCompletionChunk
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture(params=["lean", "aiohttp", "httpx"])
async def http(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    client = create_http_client(HttpConfig(transport=request.param))
    yield client
    await client.aclose()


@pytest.fixture
async def httpx_own() -> AsyncIterator[httpx.AsyncClient]:
    client = create_http_client(HttpConfig(transport="httpx"))
    yield client
    await client.aclose()


async def upstream(
    http: httpx.AsyncClient, fake: FakeUpstream, read_s: float | None = None
) -> AsyncIterator[Chunk]:
    """A chat stream as an adapter reads it: its events, parsed, from a streaming response."""
    timeout = httpx.Timeout(5.0, read=read_s)
    async with http.stream(
        "POST", f"{fake.base_url}/chat/completions", json=BODY, timeout=timeout
    ) as r:
        async for _, event in _sse.json_events(r):
            yield chunk_from_openai(event)


def guard_of(http: httpx.AsyncClient, *, heartbeat_s: float, stall_s: float = 60) -> StreamGuard:
    apart = reads_cancel_their_task(http)
    return StreamGuard(SYSTEM_CLOCK, stall_s=stall_s, heartbeat_s=heartbeat_s, apart=apart)


async def stream_record(fake: FakeUpstream) -> CallRecord:
    return await fake.state.wait_for(fake.state.last, what="the stream's call")


async def finished(fake: FakeUpstream) -> CallRecord:
    record = await stream_record(fake)
    return await fake.state.wait_for(lambda: record if record.finished else None)


def text(chunks: list[Chunk]) -> str:
    return "".join(c.choices[0].delta.text for c in chunks if c.choices)


async def test_no_heartbeat_while_the_upstream_is_still_talking(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """A read that waits (the fake holds the stream after three events, until released) is not
    silence: with a 60 s heartbeat no Idle comes, however the transport's read yields."""
    fake.state.set_scenario(Scenario(chunks=6, held_after_chunks=3))

    async def release_once_held() -> None:
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the stream held")
        fake.state.release()

    releasing = asyncio.create_task(release_once_held())
    try:
        items = [i async for i in guard_of(http, heartbeat_s=60).follow(upstream(http, fake))]
    finally:
        releasing.cancel()
    assert [i for i in items if isinstance(i, Idle)] == []
    chunks = [c for i in items if isinstance(i, list) for c in i]
    assert has_finish(chunks[-1])
    assert (await finished(fake)).completed


async def test_the_drain_after_done_never_cancels_the_caller(
    http: httpx.AsyncClient, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `[DONE]` the SSE reader drains the body under a timeout that cancels the task it
    runs in. The upstream sends everything but its body's end: a caller who takes its time over
    a heartbeat after the answer's finish (here: until the upstream's call is over) is not
    cancelled by that timeout, whichever the transport, and the stream ends as a success."""
    monkeypatch.setattr(_sse, "_DRAIN_S", 0.05)
    fake.state.set_scenario(Scenario(chunks=3, stall_after_chunks=1000))  # no end of body
    chunks: list[Chunk] = []
    follow = guard_of(http, heartbeat_s=0.01).follow(upstream(http, fake))
    async for item in follow:
        if isinstance(item, list):
            chunks += item
        elif any(has_finish(c) for c in chunks):
            # A slow caller of a heartbeat: busy until the drain gave up and the call ended.
            await finished(fake)
    assert any(has_finish(c) for c in chunks)
    assert text(chunks)
    assert (await finished(fake)).client_disconnected


async def test_a_read_timeout_ends_the_read_not_the_slow_caller(
    httpx_own: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """httpx's read timeout (anyio's cancel scope) fires while the caller is busy with a batch:
    the stream fails as the upstream's stall, after the batch, and the caller was not cancelled."""
    assert reads_cancel_their_task(httpx_own)
    fake.state.set_scenario(Scenario(chunks=6, stall_after_chunks=2))
    follow = guard_of(httpx_own, heartbeat_s=60).follow(upstream(httpx_own, fake, read_s=0.05))
    seen: list[Chunk] = []
    with pytest.raises(UpstreamFailure) as failure:
        async for item in follow:
            assert isinstance(item, list)
            seen += item
            if len(seen) >= 2:
                # A slow caller: busy until the read timed out and the upstream's call ended.
                await finished(fake)
    assert failure.value.outcome is Outcome.STALLED
    assert len(seen) == 2
