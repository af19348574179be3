"""ChatStream's `batch_chunks`: chunks that arrive together travel in one `chunks` event, in
order, and only to callers that ask for them. The upstream here writes its whole answer in one
write (as providers do when they flush several events at once), so the router reads every chunk
before its caller takes any."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import StartRouter, base_config
from tests.helpers import serve_app

WORDS = [f"w{i} " for i in range(12)]


def _sse() -> bytes:
    events = [{"role": "assistant", "content": ""}] + [{"content": w} for w in WORDS]
    lines = [
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":' + orjson.dumps(delta) + b',"finish_reason":null}]}\n\n'
        for delta in events
    ]
    lines.append(
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    return b"".join(lines) + b"data: [DONE]\n\n"


async def _burst(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_sse())  # the whole stream in one write
    await response.write_eof()
    return response


@pytest.fixture
async def burst_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _burst)
    async with serve_app(app) as base_url:
        yield f"{base_url}/v1"


@pytest.mark.parametrize("batch", [True, False])
async def test_chunks_ready_together_travel_together_when_asked(
    burst_url: str, start_router: StartRouter, batch: bool
) -> None:
    router = await start_router(base_config(burst_url))
    params = chat_pb2.ChatParams(
        model="chain", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
    )
    request = pb.ChatStreamRequest(params=params, batch_chunks=batch)
    kinds, texts, sizes = [], [], []
    async for message in router.stub.ChatStream(request):
        kind = message.WhichOneof("event")
        kinds.append(kind)
        if kind == "chunk":
            chunks = [message.chunk]
        elif kind == "chunks":
            chunks = list(message.chunks.chunks)
            sizes.append(len(chunks))
        else:
            continue
        texts += [c.choices[0].delta.text for c in chunks]
    assert "".join(texts) == "".join(WORDS)  # every chunk, in order
    assert kinds[0] == "route" and kinds[-1] == "summary"
    if batch:
        # The opening (role chunk and first content, read before the commit) is one batch too.
        assert kinds[1] == "chunks" and sizes[0] == 2
        assert all(size >= 2 for size in sizes)
        assert kinds.count("chunk") + sum(sizes) == len(WORDS) + 2
    else:
        assert "chunks" not in kinds
        assert kinds.count("chunk") == len(WORDS) + 2


async def _messages(router: Any, request: pb.ChatStreamRequest) -> list[pb.ChatStreamResponse]:
    return [message async for message in router.stub.ChatStream(request)]


@pytest.mark.parametrize("batch", [True, False])
async def test_the_route_rides_on_the_first_chunks_when_asked(
    burst_url: str, start_router: StartRouter, batch: bool
) -> None:
    """`route_on_first_message`: no route event; the message after its place (the opening's
    chunks) carries it, as the route event would have said it; the rest is unchanged."""
    router = await start_router(base_config(burst_url))
    params = chat_pb2.ChatParams(
        model="chain", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
    )
    plain = await _messages(router, pb.ChatStreamRequest(params=params, batch_chunks=batch))
    asked = pb.ChatStreamRequest(params=params, batch_chunks=batch, route_on_first_message=True)
    merged = await _messages(router, asked)

    assert plain[0].WhichOneof("event") == "route"
    assert [m.WhichOneof("event") for m in merged] == [m.WhichOneof("event") for m in plain[1:]]
    said, told = merged[0].first_route, plain[0].route
    for route in (said, told):
        for attempt in route.attempts:  # timings and the key taken differ from call to call
            attempt.ClearField("latency_ms")
            attempt.ClearField("key_fingerprint")
    assert said == told and said.deployment
    assert not any(m.HasField("first_route") for m in merged[1:] + plain)
    for one, other in zip(merged, plain[1:], strict=True):
        other.ClearField("summary")  # its timings differ; the events are the same
        one.ClearField("summary")
        one.ClearField("first_route")
        assert one == other
