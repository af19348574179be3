"""The StreamGuard over each upstream transport, against the fake upstream on loopback: reads that
time out by cancelling their task (httpx's own transport, httpcore on anyio) end the read, never
the caller's work between two batches, and a read that yields the loop a turn first (anyio does,
before each read) neither breaks a batch nor passes for silence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from clients import chunk_from_openai
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import SYSTEM_CLOCK, ManualClock
from router_service.config import HttpConfig
from router_service.engine._stream_guard import Idle, StreamGuard, has_finish
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import CallRecord, FakeUpstream, Scenario
from router_service.outcomes import Outcome
from router_service.providers import _sse, create_http_client, reads_cancel_their_task
from router_service.providers._deadline import Bounded
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.loop_clock import move_loop_clock

__all__ = ["move_loop_clock"]  # the fixture, used here

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


@asynccontextmanager
async def opened(
    http: httpx.AsyncClient, fake: FakeUpstream, read_s: float | None = None
) -> AsyncIterator[AsyncIterator[Chunk]]:
    """A chat stream as an adapter gives it to the guard: opened first (its status known), then
    its events parsed from the body as they are read."""
    timeout = httpx.Timeout(5.0, read=read_s)
    url = f"{fake.base_url}/chat/completions"
    async with http.stream("POST", url, json=BODY, timeout=timeout) as response:
        yield (chunk_from_openai(event) async for _, event in _sse.json_events(response))


def guard_of(http: httpx.AsyncClient, *, heartbeat_s: float, stall_s: float = 120) -> StreamGuard:
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
    """Events larger than a read (anyio yields the loop a turn before a read of data that is
    there already) are neither silence nor the end of a batch: with a 60 s heartbeat no Idle
    comes, and each event is relayed whole."""
    fake.state.set_scenario(Scenario(chunks=3, content="x" * 300_000))
    async with opened(http, fake) as chunks:
        items = [i async for i in guard_of(http, heartbeat_s=60).follow(chunks)]
    assert [i for i in items if isinstance(i, Idle)] == []
    relayed = [c for i in items if isinstance(i, list) for c in i]
    assert text(relayed).startswith("x" * 300_000)
    assert has_finish(relayed[-1])
    assert (await finished(fake)).completed


async def test_the_drain_after_done_never_cancels_the_caller(
    http: httpx.AsyncClient, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `[DONE]` the SSE reader drains the body within a deadline, read in the caller's task
    (a task of its own on httpx). The upstream sends everything but its body's end: a caller who
    takes its time over a heartbeat after the answer's finish (here: until the drain's deadline
    passed) is not cancelled by it, whichever the transport, and the stream ends as a success.
    The drain's deadline is the test's to pass, from the loop as its timer would: on real time a
    loaded machine may be late with the heartbeat until the deadline passed."""
    monkeypatch.setattr(_sse, "_DRAIN_S", 3600.0)
    expired = asyncio.Event()
    drains: list[Watched] = []

    class Watched(Bounded[object]):
        __slots__ = ()

        def __await__(self) -> Generator[Any, None, object]:
            drains.append(self)
            return (yield from super().__await__())

        def _expire(self) -> None:
            super()._expire()
            expired.set()

    def draining() -> Watched | None:
        """The drain's read, while it waits for the body's end."""
        return drains[-1] if drains and drains[-1]._waits is not None else None

    monkeypatch.setattr(_sse, "Bounded", Watched)
    fake.state.set_scenario(Scenario(chunks=3, stall_after_chunks=1000))  # no end of body
    chunks: list[Chunk] = []
    beats_after_finish = 0
    async with opened(http, fake) as upstream:
        async for item in guard_of(http, heartbeat_s=0.01).follow(upstream):
            if isinstance(item, list):
                chunks += item
            elif any(has_finish(c) for c in chunks) and (drain := draining()) is not None:
                beats_after_finish += 1
                asyncio.get_running_loop().call_soon(drain._expire)  # the deadline passes
                await expired.wait()  # a slow caller of a heartbeat: busy past the deadline
    assert beats_after_finish >= 1
    assert any(has_finish(c) for c in chunks)
    assert text(chunks)
    assert (await finished(fake)).client_disconnected


async def test_heartbeats_go_on_while_the_tail_after_the_finish_is_awaited(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """The upstream sends its finish and then goes quiet (held before `[DONE]`): the caller still
    hears a heartbeat each interval (a proxy's idle timeout would cut it otherwise), whichever the
    transport, and the stream ends as a success once the rest comes."""
    fake.state.set_scenario(Scenario(chunks=3, held_after_chunks=5))  # role, 3 texts, finish
    relayed: list[Chunk] = []
    beats_after_finish = 0
    async with opened(http, fake) as upstream:
        async for item in guard_of(http, heartbeat_s=0.01).follow(upstream):
            if isinstance(item, list):
                relayed += item
            elif relayed and has_finish(relayed[-1]):
                beats_after_finish += 1
                fake.state.release()  # the rest may come now
    assert beats_after_finish >= 1
    assert has_finish(relayed[-1])
    assert (await finished(fake)).completed


async def test_a_read_timeout_ends_the_read_not_the_slow_caller(
    httpx_own: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """httpx's read timeout (anyio's cancel scope) fires while the caller is busy with a batch:
    the stream fails as the upstream's stall, after the batch, and the caller was not cancelled."""
    assert reads_cancel_their_task(httpx_own)
    fake.state.set_scenario(Scenario(chunks=6, stall_after_chunks=2))
    seen: list[Chunk] = []
    with pytest.raises(UpstreamFailure) as failure:
        # Each read before the stall must come within `read_s` on the real clock (httpx's own):
        # wide, so a loaded machine's slow first chunks are not taken for the stall.
        async with opened(httpx_own, fake, read_s=1.0) as upstream:
            async for item in guard_of(httpx_own, heartbeat_s=60).follow(upstream):
                assert isinstance(item, list)
                seen += item
                if len(seen) >= 2:
                    # A slow caller: busy until the read timed out and the upstream's call ended.
                    await finished(fake)
    assert failure.value.outcome is Outcome.STALLED
    assert len(seen) == 2


async def test_a_router_on_httpx_reads_its_streams_apart(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Through the router (gRPC, `http.transport: httpx`): the stream is read by a task of its
    own while the upstream holds it; events larger than a read, and the wait, get no heartbeat
    before its 5 s interval."""
    router = await start_router(base_config(fake.base_url, http={"transport": "httpx"}))
    assert reads_cancel_their_task(router.runtime.http)
    fake.state.set_scenario(Scenario(chunks=6, held_after_chunks=3, content="x" * 600_000))

    async def read_apart() -> bool:
        return any(t.get_name() == "stream-read" for t in asyncio.all_tasks())

    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    request = pb.ChatStreamRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))

    async def release_once_held() -> bool:
        """Whether the stream had its reader task while held."""
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the stream held")
        try:
            await eventually(read_apart, within=15, what="the stream's reader task")
            return True
        except AssertionError:
            return False
        finally:
            fake.state.release()

    releasing = asyncio.create_task(release_once_held())
    try:
        kinds = [event.WhichOneof("event") async for event in router.stub.ChatStream(request)]
    finally:
        releasing.cancel()
    assert releasing.result()
    assert "heartbeat" not in kinds
    assert "error" not in kinds
    assert {"chunk", "chunks"} & set(kinds)
    assert (await finished(fake)).completed


def sse(text: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + orjson.dumps(chunk | {"choices": [choice]}) + b"\n\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def turns(n: int) -> None:
    """`n` turns of the loop (what is written on loopback is read by then)."""
    for _ in range(n):
        await asyncio.sleep(0)


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def end_stream(writer: asyncio.StreamWriter, rest: bytes) -> None:
    """Send the event's `rest`, the finish and `[DONE]`, end the chunked body and close."""
    writer.write(http_chunk(rest + sse("", "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()
    writer.close()


async def followed(
    http: httpx.AsyncClient,
    guard: StreamGuard,
    answer: Answer,
    on_item: Callable[[list[Chunk] | Idle, int], Awaitable[None]],
) -> list[list[Chunk] | Idle]:
    """What `guard` relays of the stream a loopback server writes with `answer`, read by
    `http`; `on_item` is awaited with each item and how many came so far."""
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    items: list[list[Chunk] | Idle] = []
    async with server, http.stream("POST", url, json=BODY) as response:
        upstream = (chunk_from_openai(e) async for _, e in _sse.json_events(response))
        async for item in guard.follow(upstream):
            items.append(item)
            await on_item(item, len(items))
    return items


async def test_an_event_across_reads_is_not_silence(http: httpx.AsyncClient) -> None:
    """An event that comes in four parts, the second and third there already when the guard reads
    on (anyio yields the loop a turn before a read of data that is there) and the last later: no
    heartbeat comes in between."""
    second, third = asyncio.Event(), asyncio.Event()
    sent = asyncio.Event()
    event = sse("across reads")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(SSE_HEAD)
        writer.write(http_chunk(sse("first") + event[:20]))
        await second.wait()
        for part in (event[20:40], event[40:60]):  # two reads for the client
            writer.write(http_chunk(part))
            await writer.drain()
            await turns(3)  # the client's socket is read before the next part is sent
        sent.set()
        await third.wait()
        await end_stream(writer, event[60:])

    async def later() -> None:
        await turns(20)  # the guard reads what came meanwhile
        third.set()

    laters: list[asyncio.Task[None]] = []

    async def on_item(item: list[Chunk] | Idle, count: int) -> None:
        if count == 1:
            second.set()
            await sent.wait()
            laters.append(asyncio.create_task(later()))
        elif isinstance(item, Idle):
            third.set()

    items = await followed(http, guard_of(http, heartbeat_s=60), answer, on_item)
    await laters[0]
    assert [i for i in items if isinstance(i, Idle)] == []
    assert text([c for i in items if isinstance(i, list) for c in i]) == "firstacross reads"


async def test_a_part_of_an_event_is_no_heartbeat(http: httpx.AsyncClient) -> None:
    """An event whose parts come one at a time, the guard waiting for each: a read woken by a
    part that ends no event is not a heartbeat interval of silence. (Each such wake was an Idle
    at once: the caller was sent a heartbeat saying `idle_ms` 0 mid-event.)"""
    go = asyncio.Event()
    event = sse("in parts")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(SSE_HEAD + http_chunk(sse("first")))
        await go.wait()
        for part in (event[:20], event[20:40]):
            await turns(20)  # the guard waits for the upstream's next bytes
            writer.write(http_chunk(part))
            await writer.drain()
        await turns(20)
        await end_stream(writer, event[40:])

    async def going(item: list[Chunk] | Idle, count: int) -> None:
        go.set()

    items = await followed(http, guard_of(http, heartbeat_s=60), answer, going)
    assert [i for i in items if isinstance(i, Idle)] == []
    assert text([c for i in items if isinstance(i, list) for c in i]) == "firstin parts"


async def test_a_slow_drip_still_beats(
    http: httpx.AsyncClient, move_loop_clock: Callable[[float], None]
) -> None:
    """An event whose parts drip in 10 s apart, for 40 s: the caller still hears from us each
    heartbeat interval (15 s) it was sent nothing. (A part's wake restarted the guard's timer and
    was no beat: no heartbeat at all until the event ended, or the stall window did.)"""
    clock, go = ManualClock(), asyncio.Event()
    event = sse("dripped in slowly")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(SSE_HEAD + http_chunk(sse("first")))
        await go.wait()
        for at in range(0, 60, 15):
            await turns(20)  # the guard waits for the upstream's next bytes
            clock.advance(10.0)
            move_loop_clock(10.0)
            writer.write(http_chunk(event[at : at + 15]))
            await writer.drain()
        await turns(20)
        await end_stream(writer, event[60:])

    async def going(item: list[Chunk] | Idle, count: int) -> None:
        go.set()

    guard = StreamGuard(clock, stall_s=120, heartbeat_s=15, apart=reads_cancel_their_task(http))
    items = await followed(http, guard, answer, going)
    assert [i.idle_s for i in items if isinstance(i, Idle)] == [20.0, 20.0]
    assert text([c for i in items if isinstance(i, list) for c in i]) == "firstdripped in slowly"


async def test_which_clients_read_their_streams_apart() -> None:
    """Only httpx's own transport (and any client not the router's own) cancels its task."""
    for kind, apart in (("lean", False), ("aiohttp", False), ("httpx", True)):
        client = create_http_client(HttpConfig.model_validate({"transport": kind}))
        try:
            assert reads_cancel_their_task(client) is apart, kind
        finally:
            await client.aclose()
    async with httpx.AsyncClient() as plain:
        assert reads_cancel_their_task(plain)
