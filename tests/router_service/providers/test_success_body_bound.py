"""An upstream's successful answer is read no further than its bounds (`http.max_response_bytes`
for a unary body, `http.max_event_bytes` for one event of a stream), decoded: a 200 whose body
is larger, or whose few KiB of gzip, deflate or zstd decode to far more (a decompression bomb),
is the upstream's failure (UPSTREAM_ERROR: nothing cools the key), its connection closed, on
each transport; a stream past its per-event bound ends with the stream's error event. Measured by
the memory Python allocated while the call ran (`tracemalloc`'s peak), not by time."""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import openai
import orjson
import pytest
import zstandard

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream._state import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
)
from router_service.providers._eventstream import encode_message
from tests.conftest import HANG_GUARD, StartRouter
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat, chat_failure, chat_stream
from tests.router_service.providers.test_error_body_bound import (
    LoopbackUpstream,
    config,
    read_request,
)

pytestmark = pytest.mark.timeout(120)

_ANSWER_START = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m","usage":'
    b'{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"choices":[{"index":0,'
    b'"finish_reason":"stop","message":{"role":"assistant","content":"'
)
_CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
)
_DECODED = 32 << 20  # the text in the answer, or in the stream's second event
_BODY_BOUND = 1 << 20
_EVENT_BOUND = 64 << 10
_SMALL_EVENT = 1024  # the least `http.max_event_bytes` may be
# Far over what a bounded read allocates (its bound, a few copies of it and of a decoded step),
# far under what the answer decodes to.
_PEAK_BYTES = 12 << 20
_WRITE = 64 << 10
_HELLO: list[Any] = [{"role": "user", "content": "hello"}]  # what the upstream writes at a time


def _answer() -> bytes:
    """A valid JSON chat answer whose text is `_DECODED` bytes (an old router took it)."""
    return _ANSWER_START + b"x" * _DECODED + b'"}}]}'


def _events() -> list[bytes]:
    """A valid event stream: a first chunk, then one whose text is `_DECODED` bytes."""
    return [_CHUNK % b"hi", _CHUNK % (b"x" * _DECODED) + b"data: [DONE]\n\n"]


# Each encodes the parts of one body, each part flushed: decodable on its own as it arrives.
def _zlib(wbits: int) -> Callable[[list[bytes]], list[bytes]]:
    def pack(parts: list[bytes]) -> list[bytes]:
        packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
        packed = [packer.compress(part) + packer.flush(zlib.Z_SYNC_FLUSH) for part in parts]
        return [*packed[:-1], packed[-1] + packer.flush()]

    return pack


def _zstd(parts: list[bytes]) -> list[bytes]:
    packer = zstandard.ZstdCompressor().compressobj()
    packed = [
        packer.compress(part) + packer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK) for part in parts
    ]
    return [*packed[:-1], packed[-1] + packer.flush()]


ENCODINGS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "identity": lambda parts: parts,
    "gzip": _zlib(zlib.MAX_WBITS | 16),
    "deflate": _zlib(zlib.MAX_WBITS),
    "zstd": _zstd,
}


class Answers(LoopbackUpstream):
    """A loopback upstream answering 200 with the body made of `parts` (in `encoding`: real
    bytes, real Content-Encoding) to each request, the parts after the first once `go` is set;
    `closed` once the router hung up on one."""

    def __init__(self, encoding: str, parts: list[bytes], content_type: bytes) -> None:
        super().__init__()
        self.encoding, self.content_type = encoding, content_type
        self.parts = ENCODINGS[encoding](parts)
        self.go = asyncio.Event()
        self.closed = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _WRITE)
        try:
            await read_request(reader)
            coding = b"%.0s" if self.encoding == "identity" else b"content-encoding: %s\r\n"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\n%scontent-length: %d\r\n\r\n"
                % (self.content_type, coding % self.encoding.encode(), sum(map(len, self.parts)))
            )
            for number, part in enumerate(self.parts):
                if number:
                    await self.go.wait()
                for at in range(0, len(part), _WRITE):  # as the router takes it, not queued
                    writer.write(part[at : at + _WRITE])
                    await writer.drain()
            await reader.read()  # b"" once the router closed the connection
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()
            writer.close()


def _bounded(url: str, transport: str) -> dict[str, object]:
    bounded = config(url, transport, "big")
    bounded["http"] = {
        "transport": transport,
        "max_response_bytes": _BODY_BOUND,
        "max_event_bytes": _EVENT_BOUND,
    }
    return bounded


@pytest.fixture
async def stop() -> AsyncIterator[list[LoopbackUpstream]]:
    started: list[LoopbackUpstream] = []
    yield started
    for upstream in started:
        await upstream.stop()


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
async def test_a_unary_answer_past_its_bound_is_an_upstream_failure(
    start_router: StartRouter, stop: list[LoopbackUpstream], transport: str, encoding: str
) -> None:
    upstream = Answers(encoding, [_answer()], b"application/json")
    stop.append(upstream)
    router = await start_router(_bounded(await upstream.start(), transport))
    tracemalloc.start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Chat(chat())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    details = details_from_rpc_error(caught.value)
    assert not details.bare and details.provider == "big"
    assert f"larger than the limit of {_BODY_BOUND} bytes" in details.message
    assert peak < _PEAK_BYTES, f"{peak >> 20} MiB allocated reading the answer"
    if encoding == "identity":  # cut mid-body: not drained, the connection closed
        await asyncio.wait_for(upstream.closed.wait(), 30)  # a hang guard: the router hung up
    # (A compressed one arrived whole, its exchange complete: its connection may be reused.)
    assert await router.leases_held() == 0


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
async def test_a_stream_event_past_its_bound_ends_the_stream_with_an_error_event(
    start_router: StartRouter, stop: list[LoopbackUpstream], transport: str, encoding: str
) -> None:
    upstream = Answers(encoding, _events(), b"text/event-stream")
    stop.append(upstream)
    router = await start_router(_bounded(await upstream.start(), transport))
    tracemalloc.start()
    texts, events = [], []
    try:
        async for event in router.stub.ChatStream(chat_stream()):
            events.append(event)
            chunks = [event.chunk] if event.WhichOneof("event") == "chunk" else []
            chunks += event.chunks.chunks
            texts += [choice.delta.text for chunk in chunks for choice in chunk.choices]
            if texts:
                upstream.go.set()  # the first event came through: now the one too large
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "".join(texts) == "hi"
    assert events[-1].WhichOneof("event") == "error"
    assert events[-1].error.outcome == routing_pb2.OUTCOME_UPSTREAM_ERROR
    assert f"larger than the limit of {_EVENT_BOUND} bytes" in events[-1].error.message
    assert peak < _PEAK_BYTES, f"{peak >> 20} MiB allocated reading the stream"
    if encoding == "identity":
        await asyncio.wait_for(upstream.closed.wait(), 30)
    assert await router.leases_held() == 0


async def test_through_the_edge_an_answer_past_its_bound_is_an_openai_error(
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Any]],
    stop: list[LoopbackUpstream],
) -> None:
    """The OpenAI SDK against the edge: a gzip answer that decodes past the bound is an
    OpenAI error naming it, a stream's event past its bound the stream's error, after its
    first words."""
    unary = Answers("gzip", [_answer()], b"application/json")
    streamed = Answers("gzip", _events(), b"text/event-stream")
    stop += [unary, streamed]
    routers = [await start_router(_bounded(await one.start(), "lean")) for one in stop]
    edges = [await start_edge(router) for router in routers]
    answered, events = edges
    async with openai.AsyncOpenAI(
        base_url=f"{answered.base_url}/v1", api_key="sk-any", max_retries=0, timeout=60
    ) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="chain", messages=_HELLO)
    assert caught.value.status_code == 503
    assert f"larger than the limit of {_BODY_BOUND} bytes" in caught.value.message
    texts = []
    async with openai.AsyncOpenAI(
        base_url=f"{events.base_url}/v1", api_key="sk-any", max_retries=0, timeout=60
    ) as client:
        stream = await client.chat.completions.create(model="chain", messages=_HELLO, stream=True)
        with pytest.raises(openai.APIError) as failed:
            async for chunk in stream:
                texts += [choice.delta.content or "" for choice in chunk.choices]
                if "".join(texts):
                    streamed.go.set()
    assert "".join(texts) == "hi"
    assert f"larger than the limit of {_EVENT_BOUND} bytes" in failed.value.message

    # The SDK raises at the stream's error event, which the router sends before its call ends
    # and lets go of the key: its release follows, on the router's side.
    async def released() -> bool:
        return [await router.leases_held() for router in routers] == [0, 0]

    await eventually(released, what="the routers' leases released")


def _aws_event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":message-type": "event", ":event-type": kind, ":content-type": "application/json"}
    return encode_message(headers, orjson.dumps(payload))


def _aws_text(text: str) -> bytes:
    return _aws_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})


@pytest.mark.parametrize("transport", ["lean", "httpx"])
async def test_a_bedrock_stream_message_past_the_event_bound_ends_the_stream(
    start_router: StartRouter, stop: list[LoopbackUpstream], transport: str
) -> None:
    """Bedrock's event stream is held to `http.max_event_bytes` as an SSE stream is (not only
    to the format's own 16 MiB): a message past it is the stream's error, after the words
    before it."""
    started = _aws_event("messageStart", {"role": "assistant"}) + _aws_text("hi")
    upstream = Answers(
        "identity",
        [started, _aws_text("x" * (4 << 20))],  # under the format's 16 MiB, not read
        b"application/vnd.amazon.eventstream",
    )
    stop.append(upstream)
    url = await upstream.start()
    key = f"{FAKE_AWS_ACCESS_KEY_ID}:{FAKE_AWS_SECRET_ACCESS_KEY}"
    aws = {"kind": "bedrock", "base_url": url, "region": "us-east-1", "keys": [key]}
    router = await start_router(
        {
            "providers": {"aws": aws | {"timeouts": HANG_GUARD}},
            "models": {"chain": {"deployments": [{"provider": "aws", "model": "m"}]}},
            "server": {"port": 0},
            "http": {"transport": transport, "max_event_bytes": _SMALL_EVENT},
        }
    )
    texts, events = [], []
    async for event in router.stub.ChatStream(chat_stream()):
        events.append(event)
        chunks = [event.chunk] if event.WhichOneof("event") == "chunk" else []
        chunks += event.chunks.chunks
        texts += [choice.delta.text for chunk in chunks for choice in chunk.choices]
        if "".join(texts):
            upstream.go.set()
    assert "".join(texts) == "hi"
    assert events[-1].WhichOneof("event") == "error"
    assert events[-1].error.outcome == routing_pb2.OUTCOME_UPSTREAM_ERROR
    assert f"larger than the limit of {_SMALL_EVENT} bytes" in events[-1].error.message
    await asyncio.wait_for(upstream.closed.wait(), 30)  # a hang guard: the router hung up
    assert await router.leases_held() == 0


class Raw(Answers):
    """`Answers` whose zstd body is given as it is sent (a corrupt one)."""

    def __init__(self, raw: bytes, content_type: bytes) -> None:
        super().__init__("zstd", [b""], content_type)
        self.parts = [raw]


def _reserved_after(body: bytes) -> bytes:
    """zstd: a frame whose first block decodes to `body`, its next of the reserved type."""
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(body)
    start = 4 + 2  # magic, descriptor (no content size, no dictionary) and window
    assert frame[4] == 0 and frame[start] & 1  # one block, the last
    last = frame[start : start + 3]
    first = bytes([last[0] & ~1, *last[1:]])  # not the last any more
    return frame[:start] + first + frame[start + 3 :] + b"\x07\x00\x00"  # reserved, last


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_corrupt_zstd_answer_is_a_typed_upstream_error(
    start_router: StartRouter, stop: list[LoopbackUpstream], streamed: bool
) -> None:
    kind = b"text/event-stream" if streamed else b"application/json"
    upstream = Raw(_reserved_after(_CHUNK % b"hi" if streamed else _ANSWER_START), kind)
    upstream.go.set()
    stop.append(upstream)
    router = await start_router(_bounded(await upstream.start(), "lean"))
    failure = await chat_failure(router.stub, streamed)  # failed before its first event
    details = details_from_rpc_error(failure)
    assert not details.bare and details.provider == "big"
    message = details.message
    assert "upstream body is corrupt zstd: a block of the reserved type" in message, message
    assert "Traceback" not in message
    assert await router.leases_held() == 0
