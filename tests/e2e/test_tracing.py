"""One trace end to end: the edge's HTTP span → the router's server span (context over gRPC
metadata; the edge's call has a CLIENT span only when it fails), which is the request's span →
one span per upstream attempt, which is its upstream HTTP call's. For a fallback, and for a
stream its caller walks away from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import leave_after
from tests.helpers import eventually
from tests.http_edge.harness import Edge
from tests.router_service.telemetry.spans import Trace, attrs, ended

StartEdge = Callable[..., Awaitable[Edge]]
CHAT = "switchboard.v1.RouterService/Chat"
STREAM = "switchboard.v1.RouterService/ChatStream"
HTTP = "POST /v1/chat/completions"
CHAT_A, CHAT_B = "chat model-a", "chat model-b"


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


@pytest.fixture
async def sdk(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[openai.AsyncOpenAI]:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


def child(trace: Trace, parent: ReadableSpan, name: str, kind: SpanKind) -> ReadableSpan:
    found = [s for s in trace.children(parent) if s.name == name and s.kind is kind]
    assert len(found) == 1, f"{name} ({kind}) under {parent.name}: {trace.names()}"
    return found[0]


async def test_a_fallback_is_one_trace_from_the_edge_to_the_upstream(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, captured: TelemetryCapture
) -> None:
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")

    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-switchboard-attempts"] == "2"

    trace = await ended(captured, HTTP, CHAT)
    assert len(trace.trace_ids()) == 1
    edge = trace.one(HTTP)
    assert edge.kind is SpanKind.SERVER and edge.parent is None
    # The id a user quotes (`x-request-id`, the SDK's `_request_id`) is the trace's.
    assert raw.headers["x-request-id"] == f"{edge.context.trace_id:032x}"
    assert attrs(edge)["http.response.status_code"] == 200
    # The edge's call succeeded: no CLIENT span, the router's SERVER span is the edge span's child.
    assert sorted(s.name for s in trace.spans if s.kind is SpanKind.CLIENT) == [CHAT_A, CHAT_B]
    server = child(trace, edge, CHAT, SpanKind.SERVER)
    assert attrs(server)["rpc.grpc.status_code"] == 0
    # The router's SERVER span is the request's: its attributes, its attempts.
    assert attrs(server)["gen_ai.request.model"] == "chain"
    assert attrs(server)["switchboard.attempts"] == 2
    attempts = trace.children(server)
    assert [a.name for a in attempts] == [CHAT_A, CHAT_B]
    assert [attrs(a)["switchboard.attempt.outcome"] for a in attempts] == ["UPSTREAM_ERROR", "OK"]
    for attempt, status in zip(attempts, (502, 200), strict=True):
        assert trace.children(attempt) == []
        assert attrs(attempt)["http.response.status_code"] == status


async def test_a_stream_the_caller_leaves_ends_its_spans_cancelled(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, captured: TelemetryCapture
) -> None:
    # Held after 8 pieces (20 ms apart: the upstream span lasts at least 140 ms): mid-stream
    # when the caller leaves, however slow the machine.
    fake.state.set_scenario(Scenario(chunks=500, chunk_interval_ms=20, held_after_chunks=8))

    stream = await sdk.chat.completions.create(
        model="chain", messages=[{"role": "user", "content": "a story"}], stream=True
    )
    await leave_after(stream, 5)

    trace = await ended(captured, HTTP, STREAM, CHAT_A)

    async def both_sides() -> bool:  # the edge's CLIENT span and the router's SERVER span
        return len(Trace(captured.spans()).named(STREAM)) == 2

    await eventually(both_sides, what="both sides of the call ended")
    trace = Trace(captured.spans())
    assert len(trace.trace_ids()) == 1
    edge = trace.one(HTTP)
    # One SERVER span for the whole stream, none per SSE event (`send`) or `receive`.
    assert trace.names().count(HTTP) == 1
    assert not [name for name in trace.names() if name.endswith((" send", " receive"))]
    # The edge's call failed (the caller left): its CLIENT span says so, beside the router's.
    client = child(trace, edge, STREAM, SpanKind.CLIENT)
    assert attrs(client)["rpc.grpc.status_code"] == 1  # CANCELLED
    assert client.status.status_code is StatusCode.ERROR
    server = child(trace, edge, STREAM, SpanKind.SERVER)
    assert attrs(server)["rpc.grpc.status_code"] == 1
    assert server.status.status_code is StatusCode.ERROR
    request = server  # the request's span too
    assert attrs(request)["switchboard.outcome"] == "CANCELLED"
    assert attrs(request)["gen_ai.response.time_to_first_chunk"] > 0
    attempt = child(trace, request, CHAT_A, SpanKind.CLIENT)
    assert attrs(attempt)["switchboard.attempt.outcome"] == "CANCELLED"
    # Every span of the stream ended once the stream did, not at its first chunk.
    assert (attempt.end_time or 0) - (attempt.start_time or 0) > 50_000_000  # > 5 chunks
