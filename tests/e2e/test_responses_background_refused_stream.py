"""A streamed background response (`responses.create(..., background=True, stream=True)`) whose
stream is refused before its first event, with the official `openai` SDK: the caller is told the
call failed and never learns the response's id, so the response must not run on where no one can
reach it (paid for; and the SDK's own retry of a 429 started one more each time). Nor must the
response of a caller that left before the first event (it has no id either)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import orjson
import pytest
from openai.types.responses import ResponseCreatedEvent

from clients.switchboard.v1.router_service_pb2 import Heartbeat
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server import _responses_servicer as servicer
from router_service.server._background_stream import beating
from router_service.state import DocumentPart, MemoryStateStore
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.helpers import eventually
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client, guarded_config

STREAM_KEY = "sk-streamer-0123456789"
BEAT_S = 5.0  # the router's streams.heartbeat_s, on its ManualClock


async def test_a_stream_refused_at_the_clients_stream_cap_leaves_no_response_running(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    config = guarded_config(fake.base_url, client("streamer", STREAM_KEY, max_concurrent_streams=1))
    router = await start_router(config)
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=STREAM_KEY, max_retries=0, timeout=10
    )
    # The client's one stream, open: its upstream holds it after its first events.
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    open_stream = await sdk.responses.create(model="chain", input="first", stream=True)
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the open stream held")
    fake.state.remove_scenario()
    fake.state.hold()  # a background call, should one be made, is held upstream
    try:
        with pytest.raises(openai.RateLimitError, match="concurrent streams"):
            await sdk.responses.create(model="chain", input="second", background=True, stream=True)
        # Told it failed, the caller has no id to poll or cancel: nothing of it runs on.
        assert router.server.jobs.running == 0
        await fake.state.wait_for(lambda: fake.state.in_flight == 1, what="the open stream only")
    finally:
        fake.state.release()
    assert [e.type async for e in open_stream][-1] == "response.completed"
    await sdk.close()


class HeldResume(MemoryStateStore):
    """Memory state whose first check, once `armed`, that a response's events are kept (a
    resume's first read of the store) waits until `released`: the edge waits on a resume that
    has sent nothing yet."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered = asyncio.Event()
        self.released = asyncio.Event()

    async def read_document(self, name: str, start: int, max_bytes: int) -> DocumentPart | None:
        if self.armed and max_bytes == 0:
            self.armed = False
            self.entered.set()
            await self.released.wait()
        return await super().read_document(name, start, max_bytes)


async def _handled(edge: Edge) -> None:
    """The request's handling is over (a cancel of its response with it)."""

    async def answered() -> bool:
        return not edge.server.server_state.tasks

    await eventually(answered, what="the request's task ending")


def _cancelled_once(router: RouterHandle, captured: TelemetryCapture) -> None:
    """The background response no one could reach was cancelled, and counted so."""
    assert router.server.jobs.running == 0
    ended = [
        (labels, point.value)
        for labels, point in captured.points("switchboard.responses.background.ended")
    ]
    assert ended == [({"status": "cancelled"}, 1)]


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture(tracing=False) as capture:
        yield capture


async def test_a_caller_that_leaves_before_the_first_event_has_its_response_cancelled(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The caller leaves as its stream's first event is awaited (its timeout ran out while the
    start was slow): a 499, and its response, whose id it never had, is cancelled (its call
    cut) rather than run on where no one can reach it (README)."""
    store = HeldResume()
    router = await start_router(base_config(fake.base_url), store=store)
    edge = await start_edge(router)
    body = orjson.dumps({"model": "chain", "input": "hi", "background": True, "stream": True})
    head = (
        "POST /v1/responses HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    fake.state.hold()  # the response's call, held upstream while the test looks
    store.armed = True
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(head.encode() + body)
        async with asyncio.timeout(15):
            await store.entered.wait()  # the edge waits on the resume's first event
        writer.close()
        await writer.wait_closed()

        await _handled(edge)
        _cancelled_once(router, captured)
        await fake.state.wait_for(lambda: fake.state.in_flight == 0, what="its call cut")
        statuses = [
            attributes.get("http.response.status_code")
            for attributes, _ in captured.points("http.server.request.duration")
        ]
        assert statuses == [499]  # the caller's leaving, not a stream the router cut short
    finally:
        store.released.set()
        fake.state.release()
    assert await router.server.jobs.settle(10) == 0


async def test_a_resume_past_an_event_its_caller_leaves_before_the_next_is_a_499(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """`GET /v1/responses/{id}?stream=true&starting_after=N` whose caller leaves before an event
    came: the caller's leaving (499), not an empty stream (200) written to no one."""
    store = HeldResume()
    router = await start_router(base_config(fake.base_url), store=store)
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=0)
    fake.state.hold()  # the response runs on, held upstream, after its first events
    try:
        started = await sdk.responses.create(
            model="chain", input="hi", background=True, stream=True
        )
        first = await anext(aiter(started))
        assert isinstance(first, ResponseCreatedEvent)
        response_id = first.response.id
        await started.close()
        store.armed = True
        _, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        path = f"/v1/responses/{response_id}?stream=true&starting_after=0"
        writer.write(f"GET {path} HTTP/1.1\r\nhost: edge\r\n\r\n".encode())
        async with asyncio.timeout(15):
            await store.entered.wait()  # the edge waits on the resume's first event
        writer.close()
        await writer.wait_closed()

        await _handled(edge)
        statuses = [
            (attributes.get("http.request.method"), attributes.get("http.response.status_code"))
            for attributes, _ in captured.points("http.server.request.duration")
        ]
        assert statuses[-1] == ("GET", 499)
    finally:
        store.released.set()
        fake.state.release()
    assert await router.server.jobs.settle(10) == 0
    await sdk.close()


async def test_a_heartbeat_before_the_first_event_commits_nothing(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The router's heartbeat comes before the first event (its store slow past
    `streams.heartbeat_s`): the create's stream is not committed on it (a 200 and a keepalive,
    no id), else a caller leaving then has its response run on unreachable. The first thing it
    hears is `response.created`, which carries the id."""
    beat = asyncio.Event()

    async def told(events: Any, clock: Any, every_s: float) -> AsyncIterator[Any]:
        async for event in beating(events, clock, every_s):
            if isinstance(event, Heartbeat):
                beat.set()  # the router sends it on, before what follows
            yield event

    monkeypatch.setattr(servicer, "beating", told)
    clock = ManualClock()
    store = HeldResume()
    config = base_config(fake.base_url, streams={"heartbeat_s": BEAT_S})
    router = await start_router(config, clock=clock, store=store)
    edge = await start_edge(router)
    body = orjson.dumps({"model": "chain", "input": "hi", "background": True, "stream": True})
    head = (
        "POST /v1/responses HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    store.armed = True
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(head.encode() + body)
        async with asyncio.timeout(15):
            await store.entered.wait()  # the edge waits on the resume's first event
            clock.advance(BEAT_S)
            await beat.wait()
            store.released.set()
            answer = await reader.readuntil(b"event: response.")
        writer.close()
        await writer.wait_closed()
    finally:
        store.released.set()
    assert answer.startswith(b"HTTP/1.1 200")
    assert b": keepalive" not in answer, answer  # nothing sent before the id
    assert await router.server.jobs.settle(10) == 0


class HeldStart(MemoryStateStore):
    """Memory state whose background start (its place among the client's jobs) waits until
    `released`: the edge waits on a slow start."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.released = asyncio.Event()

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        if group.startswith("bg-jobs:"):
            self.entered.set()
            await self.released.wait()
        return await super().enter(group, member, limit=limit, ttl_s=ttl_s)


async def test_a_background_caller_that_leaves_during_a_slow_start_has_it_cancelled(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """`background` without `stream`: the caller leaves while the start is slow (its timeout
    ran out), so never gets the queued Response and its id. The response is cancelled once
    started, as a streamed one's is, not left running unreachable (and started again by the
    SDK's retry of its timeout)."""
    store = HeldStart()
    router = await start_router(base_config(fake.base_url), store=store)
    edge = await start_edge(router)
    body = orjson.dumps({"model": "chain", "input": "hi", "background": True})
    head = (
        "POST /v1/responses HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    fake.state.hold()  # the response's call, held upstream while the test looks
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(head.encode() + body)
        async with asyncio.timeout(15):
            await store.entered.wait()  # the router's start waits
        writer.close()
        await writer.wait_closed()
        store.released.set()

        await _handled(edge)
        _cancelled_once(router, captured)
        await fake.state.wait_for(lambda: fake.state.in_flight == 0, what="its call cut")
    finally:
        store.released.set()
        fake.state.release()
    assert await router.server.jobs.settle(10) == 0


async def test_a_pipelining_caller_that_leaves_during_a_slow_start_has_it_cancelled(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """As above, but the caller pipelined a request behind the create before it left: uvicorn
    stops reading the connection at a pipelined request, so its end is seen only if the edge
    reads on while the start is slow (as it does while it waits on any call of a request)."""
    store = HeldStart()
    router = await start_router(base_config(fake.base_url), store=store)
    edge = await start_edge(router)
    body = orjson.dumps({"model": "chain", "input": "hi", "background": True})
    head = (
        "POST /v1/responses HTTP/1.1\r\nhost: edge\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    connections = edge.server.server_state.connections
    fake.state.hold()  # the response's call, held upstream while the test looks
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(head.encode() + body)
        async with asyncio.timeout(15):
            await store.entered.wait()  # the router's start waits
        writer.write(b"GET /v1/models HTTP/1.1\r\nhost: edge\r\n\r\n")

        async def pipelined() -> bool:
            return any(len(getattr(c, "pipeline", ())) == 1 for c in connections)

        await eventually(pipelined, what="the next request read ahead")
        writer.close()
        await writer.wait_closed()

        async def seen_gone() -> bool:  # the edge read the caller's end
            return not connections

        await eventually(seen_gone, what="the caller's leaving seen")
        store.released.set()

        await _handled(edge)
        _cancelled_once(router, captured)
    finally:
        store.released.set()
        fake.state.release()
    assert await router.server.jobs.settle(10) == 0
