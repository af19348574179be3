"""`POST /v1/completions` against a stub router: the chat route's machinery (metadata, session,
route headers, request ids, CORS, body limit, telemetry, stream endings) applies to it as is."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest
from opentelemetry.trace import SpanKind

from clients import ErrorDetails
from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.telemetry.testing import TelemetryCapture
from tests.http_edge import edge_messages as m
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

BODY: dict[str, Any] = {"model": "m", "prompt": "hi"}
STREAM: dict[str, Any] = {**BODY, "stream": True}


def data(body: bytes) -> list[Any]:
    """Each `data:` event's payload (`[DONE]` as the string), comments left out."""
    out: list[Any] = []
    for block in body.split(b"\n\n"):
        if block.startswith(b"data: "):
            payload = block[len(b"data: ") :]
            out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


async def test_the_call_carries_the_chat_routes_metadata_and_session(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def chat(request: rs.ChatRequest, context: grpc.aio.ServicerContext) -> Any:
        return rs.ChatResponse(completion=m.completion("Hi!"), route=m.route(attempts=2))

    stub.on_chat = chat
    headers = {"authorization": "Bearer sk-x", "x-session-id": "s-1", "x-request-id": "r-1"}
    answer = await http.post("/v1/completions", json=BODY, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["choices"] == [
        {"text": "Hi!", "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    assert answer.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert answer.headers["x-switchboard-attempts"] == "2"
    assert answer.headers["x-switchboard-deployment"] == m.DEPLOYMENT
    assert answer.headers["x-request-id"] == "r-1"
    [call] = stub.calls
    assert call.method == "Chat" and call.request.routing.session_id == "s-1"
    assert call.metadata["authorization"] == "Bearer sk-x"
    assert call.metadata["x-request-id"] == "r-1"


async def test_a_stream_relays_text_completion_chunks_keepalives_and_done(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        for message in (m.heartbeat(), m.route_message(), m.chunk(), m.chunk("Hel")):
            yield message
        yield m.heartbeat()
        yield m.chunk("lo", finish=True)
        yield m.usage_chunk()
        yield m.summary()

    stub.on_chat_stream = stream
    answer = await http.post("/v1/completions", json=STREAM)
    assert answer.status_code == 200
    assert answer.headers["x-switchboard-deployment"] == m.DEPLOYMENT
    assert b"\n\n: keepalive\n\n" in answer.content  # the heartbeat after the commit
    *chunks, done = data(answer.content)
    assert done == "[DONE]"
    # The role-only opening chunk says nothing in this API: it is not sent.
    assert [c["choices"] for c in chunks] == [
        [{"text": "Hel", "index": 0, "logprobs": None, "finish_reason": None}],
        [{"text": "lo", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert chunks[-1]["usage"]["total_tokens"] == 7
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("cmpl-")
    params = stub.calls[0].request.params
    assert params.max_tokens == 16 and params.messages[0].text == "hi"


async def test_a_failure_after_the_first_chunk_is_an_error_event_then_done(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield m.chunk("Hel")
        yield m.stream_error()

    stub.on_chat_stream = stream
    answer = await http.post("/v1/completions", json=STREAM)
    *_, error, done = data(answer.content)
    assert error == {
        "error": {
            "message": "upstream stalled",
            "type": "stream_timeout",
            "code": "stalled",
            "param": None,
        }
    }
    assert done == "[DONE]"


async def test_a_stream_error_before_the_first_chunk_is_an_http_error(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        # As the router says it (pushback -1): not tried again, like its own answers.
        failed = "all deployments failed"
        details = ErrorDetails(grpc.StatusCode.UNAVAILABLE, failed, "UPSTREAM_ERROR")
        await abort_with(context, details)
        yield m.route_message()  # pragma: no cover

    stub.on_chat_stream = stream
    answer = await http.post("/v1/completions", json=STREAM)
    assert answer.status_code == 503
    assert answer.json()["error"]["message"]
    assert len(stub.calls) == 1  # the router's own answer: not tried again


async def test_body_limit_and_cors_as_for_chat(stub: StubRouter, start_edge: EdgeFactory) -> None:
    origin = "http://localhost:5001"  # Kobold Lite's text-completion mode, in a browser
    edge = await start_edge(max_body_bytes=1024, cors_origins=[origin])
    preflight_headers = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        preflight = await http.options("/v1/completions", headers=preflight_headers)
        too_large = await http.post(
            "/v1/completions", json={**BODY, "prompt": "x" * 2048}, headers={"origin": origin}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "request_too_large"
    assert too_large.headers["access-control-allow-origin"] == origin
    assert stub.calls == []


@pytest.fixture
def traced() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


async def test_requests_are_traced_and_measured_by_route(
    traced: TelemetryCapture, stub: StubRouter, start_edge: EdgeFactory
) -> None:
    async def chat(request: rs.ChatRequest, context: grpc.aio.ServicerContext) -> Any:
        return rs.ChatResponse(completion=m.completion("Hi!"), route=m.route())

    stub.on_chat = chat
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.post("/v1/completions", json=BODY)).status_code == 200
    [server] = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/completions"
    # The call to the router continues the request's span (its context in the metadata), with no
    # CLIENT span of its own: it succeeded.
    [call] = stub.calls
    trace_id, span_id = (int(part, 16) for part in call.metadata["traceparent"].split("-")[1:3])
    assert (trace_id, span_id) == (server.context.trace_id, server.context.span_id)
    assert [s for s in traced.spans() if s.kind is SpanKind.CLIENT] == []
    routes = [a.get("http.route") for a, _ in traced.points("http.server.request.duration")]
    assert routes == ["/v1/completions"]
