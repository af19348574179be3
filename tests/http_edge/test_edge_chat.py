"""Chat completions through the edge, driven by the official OpenAI SDK and raw httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import openai
import orjson
import pytest

from clients import ErrorDetails, chunk_to_openai
from clients.switchboard.v1 import router_service_pb2 as rs
from tests.helpers import counted_tasks
from tests.http_edge.edge_messages import (
    DEPLOYMENT,
    chunk,
    completion,
    heartbeat,
    route,
    route_message,
    stream_error,
    summary,
    usage_chunk,
)
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
BODY = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}


def stream_of(*messages: rs.ChatStreamResponse) -> Any:
    async def handler(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        for message in messages:
            yield message

    return handler


def sse_bytes(*messages: rs.ChatStreamResponse) -> bytes:
    """What the edge must write for these chunks: compact `data:` events, then `[DONE]`."""
    events = [b"data: " + orjson.dumps(chunk_to_openai(m.chunk)) + b"\n\n" for m in messages]
    return b"".join(events) + b"data: [DONE]\n\n"


def events_of(body: bytes) -> list[bytes]:
    assert body.endswith(b"\n\n")
    return body[:-2].split(b"\n\n")


def error_of(event: bytes) -> dict[str, Any]:
    assert event.startswith(b"data: ")
    payload = orjson.loads(event[len(b"data: ") :])
    assert set(payload) == {"error"}
    error: dict[str, Any] = payload["error"]
    return error


async def test_chat_returns_completion_and_route_headers(
    stub: StubRouter, sdk: openai.AsyncOpenAI
) -> None:
    async def on_chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("Hello!"), route=route(attempts=2))

    stub.on_chat = on_chat
    raw = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.5
    )
    result = raw.parse()
    assert result.object == "chat.completion"
    assert result.choices[0].message.content == "Hello!"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.total_tokens == 5
    assert raw.headers["x-switchboard-deployment"] == DEPLOYMENT
    assert raw.headers["x-switchboard-attempts"] == "2"
    [call] = stub.calls
    assert call.method == "Chat"
    assert call.request.params.model == "gpt-4o-mini"
    assert call.request.params.messages[0].text == "Say hello"
    assert call.request.params.temperature == 0.5


async def test_stream_sdk_reads_every_chunk(stub: StubRouter, sdk: openai.AsyncOpenAI) -> None:
    stub.on_chat_stream = stream_of(
        route_message(), chunk(), chunk("Hel"), chunk("lo"), chunk(finish=True), summary()
    )
    stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = [item async for item in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert stub.calls[0].method == "ChatStream"


async def test_stream_bytes_are_plain_data_events(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    chunks = (chunk(), chunk("Hi"), chunk(finish=True))
    stub.on_chat_stream = stream_of(heartbeat(), route_message(3), *chunks, summary())
    async with http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        body = await response.aread()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    # The route seen before the commit is reported; the heartbeat before it is not written.
    assert response.headers["x-switchboard-deployment"] == DEPLOYMENT
    assert response.headers["x-switchboard-attempts"] == "3"
    assert body == sse_bytes(*chunks)
    lines = body.split(b"\n")
    assert not [line for line in lines if line.startswith((b"id:", b"event:"))]


async def test_a_chunk_batch_is_written_as_its_chunks_events(
    stub: StubRouter, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    singles = (chunk(), chunk("Hel"), chunk("lo"), chunk(" there"), chunk(finish=True))
    batch = rs.ChatStreamResponse(
        chunks=rs.ChunkBatch(chunks=[message.chunk for message in singles[1:]])
    )
    stub.on_chat_stream = stream_of(route_message(), singles[0], batch, summary())
    response = await http.post("/v1/chat/completions", json=BODY)
    # The same bytes as one event per chunk: callers cannot tell a batch from singles.
    assert response.content == sse_bytes(*singles)
    stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    texts = [c.choices[0].delta.content or "" async for c in stream]
    assert "".join(texts) == "Hello there"
    # The edge asks the router for batches.
    assert all(call.request.batch_chunks for call in stub.calls)


async def test_heartbeats_become_comments_and_sdk_reads_past_them(
    stub: StubRouter, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    stub.on_chat_stream = stream_of(
        chunk("a"), heartbeat(), heartbeat(), chunk("b", finish=True), summary()
    )
    response = await http.post("/v1/chat/completions", json=BODY)
    events = events_of(response.content)
    assert events[1:3] == [b": keepalive", b": keepalive"]
    assert events[-1] == b"data: [DONE]"

    stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    texts = [c.choices[0].delta.content async for c in stream]
    assert texts == ["a", "b"]


async def test_usage_chunk_is_relayed(stub: StubRouter, sdk: openai.AsyncOpenAI) -> None:
    stub.on_chat_stream = stream_of(chunk("Hi", finish=True), usage_chunk(3, 4), summary())
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert stub.calls[0].request.params.stream_options.include_usage is True
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7


async def test_rate_limit_before_first_chunk_is_http_429(
    stub: StubRouter, sdk: openai.AsyncOpenAI
) -> None:
    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        yield heartbeat()
        await abort_with(
            context,
            ErrorDetails(
                code=grpc.StatusCode.RESOURCE_EXHAUSTED,
                message="Every key of every candidate is rate limited.",
                reason="RATE_LIMITED",
                retry_after_s=7,
            ),
        )

    stub.on_chat_stream = on_stream
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limited"
    assert caught.value.message.endswith("Every key of every candidate is rate limited.")


async def test_upstream_bad_request_passes_through(
    stub: StubRouter, sdk: openai.AsyncOpenAI
) -> None:
    upstream = {
        "error": {
            "message": "Invalid value for 'temperature': must be at most 2.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
            "provider_detail": {"request_id": "req_1"},
        }
    }

    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        await abort_with(
            context,
            ErrorDetails(
                code=grpc.StatusCode.INVALID_ARGUMENT,
                message="upstream refused the request",
                reason="BAD_REQUEST",
                provider="openai",
                upstream_status=400,
                upstream_error=upstream,
            ),
        )
        yield chunk()  # pragma: no cover

    stub.on_chat_stream = on_stream
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 400
    assert caught.value.body == upstream["error"]
    assert caught.value.param == "temperature"


async def test_error_after_first_chunk_is_an_error_event_then_done(
    stub: StubRouter, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield chunk("Hel")
        await abort_with(
            context,
            ErrorDetails(
                code=grpc.StatusCode.UNAVAILABLE,
                message="upstream failed mid-stream",
                reason="UPSTREAM_ERROR",
                provider="openai",
            ),
        )

    stub.on_chat_stream = on_stream
    response = await http.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 200
    first, error, done = events_of(response.content)
    assert first.startswith(b'data: {"id":"chatcmpl-1"')
    assert error_of(error) == {
        "message": "upstream failed mid-stream",
        "type": "server_error",
        "code": "upstream_error",
        "param": None,
    }
    assert done == b"data: [DONE]"

    stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError, match="upstream failed mid-stream"):
        async for item in stream:
            received.append(item)
    assert [c.choices[0].delta.content for c in received] == ["Hel"]


async def test_stream_error_message_is_an_error_event(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    stub.on_chat_stream = stream_of(chunk("Hel"), stream_error("no chunk for 30 s"))
    response = await http.post("/v1/chat/completions", json=BODY)
    _, error, done = events_of(response.content)
    assert error_of(error) == {
        "message": "no chunk for 30 s",
        "type": "stream_timeout",
        "code": "stalled",
        "param": None,
    }
    assert done == b"data: [DONE]"


async def test_stream_without_summary_ends_with_truncation_event(
    stub: StubRouter, sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    stub.on_chat_stream = stream_of(chunk("Hel"), chunk("lo"))
    response = await http.post("/v1/chat/completions", json=BODY)
    *_, error, done = events_of(response.content)
    assert error_of(error)["type"] == "stream_truncated"
    assert done == b"data: [DONE]"

    stream = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="ended before it was complete"):
        async for _ in stream:
            pass


async def test_stream_ending_before_any_chunk_is_http_502(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    stub.on_chat_stream = stream_of(route_message(), heartbeat())
    response = await http.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "stream_truncated"


async def test_client_disconnect_mid_stream_cancels_the_router_call(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    stalled = asyncio.Event()

    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield chunk("Hel")
        stalled.set()
        await asyncio.Event().wait()  # a stalled upstream: only cancellation ends this
        yield chunk()  # pragma: no cover

    stub.on_chat_stream = on_stream
    with counted_tasks() as made:
        async with http.stream("POST", "/v1/chat/completions", json=BODY) as response:
            async for line in response.aiter_lines():
                assert line.startswith("data: ")
                break
            # Left once the handler waits: a cancel landing while grpc still sends "Hel" would
            # close its generator (GeneratorExit), not cancel it, and `cancelled` never be set.
            async with asyncio.timeout(15):
                await stalled.wait()
        # Leaving the block closed the connection mid-stream: the edge's connection told the
        # response (no task waits for `http.disconnect`), which cancelled the router call.
        async with asyncio.timeout(15):
            await stub.cancelled.wait()
    assert not [name for name in made if "disconnect" in name.lower()], made


async def test_client_disconnect_before_first_chunk_cancels_the_router_call(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    entered = asyncio.Event()

    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        entered.set()
        await asyncio.Event().wait()  # no first chunk yet
        yield chunk()  # pragma: no cover

    stub.on_chat_stream = on_stream
    request = asyncio.create_task(http.post("/v1/chat/completions", json=BODY))
    try:
        async with asyncio.timeout(15):
            await entered.wait()
    finally:
        request.cancel()
        await asyncio.wait([request])
    async with asyncio.timeout(15):
        await stub.cancelled.wait()


async def test_client_disconnect_during_non_stream_chat_cancels_the_router_call(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    entered = asyncio.Event()

    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        entered.set()
        await asyncio.Event().wait()  # a long completion
        raise AssertionError("unreachable")

    stub.on_chat = on_chat
    request = asyncio.create_task(http.post("/v1/chat/completions", json={**BODY, "stream": False}))
    try:
        async with asyncio.timeout(15):
            await entered.wait()
    finally:
        request.cancel()
        await asyncio.wait([request])
    async with asyncio.timeout(15):
        await stub.cancelled.wait()


async def test_deadline_is_http_504(stub: StubRouter, start_edge: EdgeFactory) -> None:
    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        await asyncio.Event().wait()  # never answers: the edge's deadline must end the call
        raise AssertionError("unreachable")

    stub.on_chat = on_chat
    edge = await start_edge(request_timeout_s=0.2)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        response = await client.post("/v1/chat/completions", json={**BODY, "stream": False})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
