"""A stream the edge committed (HTTP 200 sent) that then fails is the server's failure on the
edge's SERVER span (over two processes: the router is another's): the router's stream ending
without its summary (`stream_truncated`) or its call failing mid-stream (the error's reason), on
every streaming entrance alike (`_stream_failure`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from clients import ErrorDetails
from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually
from tests.http_edge.edge_messages import chunk, route_message, stream_error
from tests.http_edge.harness import EdgeFactory, StubRouter, abort_with

HI = [{"role": "user", "content": "hi"}]
# Each entrance: its path and a streamed request's body.
ENTRANCES = [
    pytest.param("/v1/chat/completions", {"model": "m", "messages": HI, "stream": True}, id="chat"),
    pytest.param("/api/chat", {"model": "m", "messages": HI}, id="ollama"),
    pytest.param(
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        id="gemini",
    ),
]
UNAVAILABLE = ErrorDetails(
    code=grpc.StatusCode.UNAVAILABLE, message="the router went away", reason="UNAVAILABLE"
)


@pytest.fixture
def traced() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


@pytest.mark.parametrize(("path", "body"), ENTRANCES)
@pytest.mark.parametrize(
    ("fails", "kind"),
    [(False, "stream_truncated"), (True, "UNAVAILABLE")],
    ids=["truncated", "error"],
)
async def test_a_stream_failed_after_its_200_fails_the_edge_span(
    traced: TelemetryCapture,
    stub: StubRouter,
    start_edge: EdgeFactory,
    path: str,
    body: dict[str, Any],
    fails: bool,
    kind: str,
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        yield chunk("Hel")
        if fails:
            await abort_with(context, UNAVAILABLE)
        # else: the stream ends without its summary

    stub.on_chat_stream = stream
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 200

    async def ended() -> bool:
        return any(s.kind is SpanKind.SERVER for s in traced.spans())

    await eventually(ended, what="the edge's span ended")
    (server,) = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    said = server.attributes or {}
    assert said["http.response.status_code"] == 200
    assert said["error.type"] == kind
    assert server.status.status_code is StatusCode.ERROR
    assert (server.status.description or "").startswith(f"{kind}: ")


@pytest.mark.parametrize(("path", "body"), ENTRANCES)
async def test_an_error_event_with_an_outcome_this_edge_does_not_know_reaches_its_caller(
    traced: TelemetryCapture,
    stub: StubRouter,
    start_edge: EdgeFactory,
    path: str,
    body: dict[str, Any],
) -> None:
    """A newer router (a rolling upgrade) ends a stream with an outcome this edge's protos do
    not name: the caller still reads the router's message, not the edge's relay failing, and the
    span says the error's code."""
    error = stream_error("the upstream went quiet")
    error.error.outcome = 999  # type: ignore[assignment]  # a value a newer router may add

    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        yield chunk("Hel")
        yield error

    stub.on_chat_stream = stream
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 200
    assert "the upstream went quiet" in response.text
    assert "relaying" not in response.text

    async def ended() -> bool:
        return any(s.kind is SpanKind.SERVER for s in traced.spans())

    await eventually(ended, what="the edge's span ended")
    (server,) = [s for s in traced.spans() if s.kind is SpanKind.SERVER]
    assert (server.attributes or {})["error.type"] == "stalled"
    assert server.status.status_code is StatusCode.ERROR
