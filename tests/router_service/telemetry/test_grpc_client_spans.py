"""The edge's way of tracing its router calls (`client_observer(call_spans=False)`): a call made
under a span continues that span over the wire (W3C context in the metadata) and has a CLIENT
span of its own only when it fails; a call made outside any span keeps its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry import context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from clients import RouterClient, RouterError
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc as pb_grpc
from router_service.telemetry import client_observer, server_interceptors
from router_service.telemetry._state import current
from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually, serve_grpc
from tests.router_service.telemetry.spans import attrs
from tests.router_service.telemetry.test_grpc_tracing import Slow

CHAT = "switchboard.v1.RouterService/Chat"
MODELS = "switchboard.v1.RouterService/ListModels"


class Answers(Slow):
    """Chat answers; ListModels fails (NOT_FOUND), as `Slow`'s."""

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChatResponse:
        return pb.ChatResponse()


@pytest.fixture
async def client(captured: TelemetryCapture) -> AsyncIterator[RouterClient]:
    servicer = Answers()  # type: ignore[abstract]  # only Chat and ListModels are called
    async with serve_grpc(
        (pb_grpc.add_RouterServiceServicer_to_server, servicer), interceptors=server_interceptors()
    ) as target:
        router = RouterClient(target, observer=client_observer(call_spans=False))
        try:
            yield router
        finally:
            await router.aclose()


async def spans(captured: TelemetryCapture, count: int) -> list[ReadableSpan]:
    async def arrived() -> bool:
        return len(captured.spans()) >= count

    await eventually(arrived, what=f"{count} spans ended")
    await asyncio.sleep(0)  # a span more than expected would be here by now: its callback ran
    return list(captured.spans())


async def test_a_call_that_succeeds_has_no_client_span_and_continues_the_callers(
    client: RouterClient, captured: TelemetryCapture
) -> None:
    with current().tracer.start_as_current_span("edge", kind=SpanKind.SERVER) as edge:
        await client.chat(pb.ChatRequest(), timeout=5)
    server, caller = await spans(captured, 2)
    assert caller.context == edge.get_span_context()
    assert (server.name, server.kind) == (CHAT, SpanKind.SERVER)
    assert server.parent is not None and server.parent.span_id == caller.context.span_id
    assert server.context.trace_id == caller.context.trace_id
    assert attrs(server)["rpc.grpc.status_code"] == 0


async def test_a_call_that_fails_has_its_client_span_under_the_callers(
    client: RouterClient, captured: TelemetryCapture
) -> None:
    with current().tracer.start_as_current_span("edge", kind=SpanKind.SERVER) as edge:
        with pytest.raises(RouterError):
            await client.list_models(timeout=5)
    found = await spans(captured, 3)
    [call] = [s for s in found if s.kind is SpanKind.CLIENT]
    [server] = [s for s in found if s.kind is SpanKind.SERVER and s.name == MODELS]
    assert call.name == MODELS
    assert call.parent is not None and call.parent.span_id == edge.get_span_context().span_id
    assert attrs(call)["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert attrs(call)["error.type"] == "NOT_FOUND"
    assert call.status.status_code is StatusCode.ERROR
    assert attrs(call)["rpc.service"] == "switchboard.v1.RouterService"
    # From the call's start, before the router's side started.
    assert (call.start_time or 0) <= (server.start_time or 0)
    assert server.parent is not None and server.parent.span_id == edge.get_span_context().span_id


async def test_a_sampled_out_caller_records_nothing_on_either_side(
    client: RouterClient, captured: TelemetryCapture
) -> None:
    dropped = SpanContext(0xA1, 0xB2, is_remote=True, trace_flags=TraceFlags(0))
    token = context.attach(set_span_in_context(NonRecordingSpan(dropped)))
    try:
        with pytest.raises(RouterError):
            await client.list_models(timeout=5)
        await client.chat(pb.ChatRequest(), timeout=5)
    finally:
        context.detach(token)
    await asyncio.sleep(0)
    assert captured.spans() == []


async def test_a_call_outside_any_span_has_its_own_client_span(
    client: RouterClient, captured: TelemetryCapture
) -> None:
    await client.chat(pb.ChatRequest(), timeout=5)
    found = await spans(captured, 2)
    [call] = [s for s in found if s.kind is SpanKind.CLIENT]
    [server] = [s for s in found if s.kind is SpanKind.SERVER]
    assert call.parent is None
    assert server.parent is not None and server.parent.span_id == call.context.span_id


def test_a_call_that_cannot_start_ends_a_failed_client_span_under_the_callers(
    captured: TelemetryCapture,
) -> None:
    observer = client_observer(call_spans=False)
    assert observer is not None
    with current().tracer.start_as_current_span("edge") as edge:
        call = observer.start("/" + CHAT, (("authorization", "Bearer sk-x"),))
        traceparent = dict(call.metadata)["traceparent"]
        assert isinstance(traceparent, str)  # a text key's value (only `-bin` ones are bytes)
        call.fail(grpc.aio.UsageError("the channel is closed"))
    assert traceparent.split("-")[2] == f"{edge.get_span_context().span_id:016x}"
    span, _ = captured.spans()
    assert (span.name, span.kind) == (CHAT, SpanKind.CLIENT)
    assert span.parent is not None and span.parent.span_id == edge.get_span_context().span_id
    assert attrs(span)["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert span.status.status_code is StatusCode.ERROR
