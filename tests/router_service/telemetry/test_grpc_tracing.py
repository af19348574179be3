"""The gRPC tracing interceptors against the known traps: cancellation must still reach the caller
through the client interceptors (opentelemetry-python-contrib #3271), a server-side cancel must
not end a span as OK, `abort_with_status` codes must be recorded, a stream cancelled without a
pending read must still end its span, and the W3C context must cross the wire."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from clients import ErrorDetails, RouterClient, RouterError, to_grpc_status
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc as pb_grpc
from router_service.telemetry import client_observer, server_interceptors
from router_service.telemetry._grpc import LOCAL_PARENT
from router_service.telemetry._state import current
from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually, serve_grpc
from tests.router_service.telemetry.spans import Trace, attrs

CHAT = "switchboard.v1.RouterService/Chat"
STREAM = "switchboard.v1.RouterService/ChatStream"
MODELS = "switchboard.v1.RouterService/ListModels"


class Slow(pb_grpc.RouterServiceServicer):
    """Answers slowly (or never), records cancellations."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()
        self.silent = asyncio.Event()  # ChatStream sent its message and waits
        self.closed = asyncio.Event()  # ChatStream was closed at its yield (GeneratorExit)
        self.cancel_while_sending = False

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChatResponse:
        self.started.set()
        try:
            await asyncio.Event().wait()  # until the caller cancels
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return pb.ChatResponse()

    async def ChatStream(
        self, request: pb.ChatStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        if self.cancel_while_sending:  # what grpc does when a cancel comes while it sends c0
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().call_soon(task.cancel)  # once grpc awaits that send
        try:
            yield pb.ChatStreamResponse(chunk=chat_pb2.ChatCompletionChunk(id="c0"))
            self.silent.set()
            await asyncio.Event().wait()  # then silence, until the caller cancels
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        except GeneratorExit:
            self.closed.set()
            raise

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        details = ErrorDetails(code=grpc.StatusCode.NOT_FOUND, message="no models", reason="X")
        await context.abort_with_status(to_grpc_status(details))
        raise AssertionError("unreachable")


@pytest.fixture
async def served(captured: TelemetryCapture) -> AsyncIterator[tuple[Slow, RouterClient]]:
    servicer = Slow()  # type: ignore[abstract]  # only Chat, ChatStream and ListModels are called
    async with serve_grpc(
        (pb_grpc.add_RouterServiceServicer_to_server, servicer),
        (health_pb2_grpc.add_HealthServicer_to_server, health.aio.HealthServicer()),
        interceptors=server_interceptors(),
    ) as target:
        client = RouterClient(target, observer=client_observer())
        try:
            yield servicer, client
        finally:
            await client.aclose()


async def pair(captured: TelemetryCapture, name: str) -> tuple[ReadableSpan, ReadableSpan]:
    """The client and the server span of one call, once both ended."""

    async def both() -> bool:
        return len(Trace(captured.spans()).named(name)) == 2

    await eventually(both, what=f"client and server spans of {name} ended")
    trace = Trace(captured.spans())
    assert len(trace.trace_ids()) == 1
    client = next(s for s in trace.named(name) if s.kind is SpanKind.CLIENT)
    server = next(s for s in trace.named(name) if s.kind is SpanKind.SERVER)
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    return client, server


async def test_a_cancelled_unary_call_raises_cancelled_error_in_the_caller(
    served: tuple[Slow, RouterClient], captured: TelemetryCapture
) -> None:
    servicer, client = served
    task = asyncio.create_task(client.chat(pb.ChatRequest(), timeout=10))
    await servicer.started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task  # propagated, not swallowed by an interceptor
    await asyncio.wait_for(servicer.cancelled.wait(), 15)

    for span in await pair(captured, CHAT):
        assert attrs(span)["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
        assert span.status.status_code is StatusCode.ERROR


async def test_a_stream_cancelled_between_reads_still_ends_its_spans(
    served: tuple[Slow, RouterClient], captured: TelemetryCapture
) -> None:
    servicer, client = served
    stream = client.chat_stream(pb.ChatStreamRequest(), timeout=10)
    first = await anext(aiter(stream))
    assert first.chunk.id == "c0"
    # The caller may read c0 before grpc's server task has taken back the send's end: a cancel
    # reaching it then (a loaded machine) ends the call in grpc's send, and the servicer's
    # generator is closed later, with GeneratorExit at its yield, not cancelled in its silence.
    await asyncio.wait_for(servicer.silent.wait(), 15)
    await stream.aclose()  # no read pending: nobody iterates a wrapper any more

    await asyncio.wait_for(servicer.cancelled.wait(), 15)
    for span in await pair(captured, STREAM):
        assert attrs(span)["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
        assert span.status.status_code is StatusCode.ERROR


async def test_a_stream_cancelled_while_grpc_sends_its_message_still_ends_its_span_cancelled(
    served: tuple[Slow, RouterClient], captured: TelemetryCapture
) -> None:
    """A cancel reaching grpc's server task while it sends a message (its caller may have read
    it already) ends the task in grpc's send, outside the handler: the handler's generator is
    closed after, with GeneratorExit at its yield. The SERVER span still says CANCELLED."""
    servicer, client = served
    servicer.cancel_while_sending = True
    stream = client.chat_stream(pb.ChatStreamRequest(), timeout=10)

    async def read() -> None:  # starts the call (a late start begins at the first read)
        with contextlib.suppress(RouterError, StopAsyncIteration):
            await anext(aiter(stream))

    reading = asyncio.create_task(read())
    await asyncio.wait_for(servicer.closed.wait(), 15)
    assert not servicer.cancelled.is_set()  # the task was cancelled in grpc's send, not here
    await stream.aclose()
    await asyncio.wait_for(reading, 15)
    _, server = await pair(captured, STREAM)
    assert attrs(server)["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.status.status_code is StatusCode.ERROR


async def test_abort_with_status_is_the_spans_code(
    served: tuple[Slow, RouterClient], captured: TelemetryCapture
) -> None:
    _, client = served
    with pytest.raises(RouterError) as caught:
        await client.list_models(timeout=5)
    assert caught.value.grpc_code is grpc.StatusCode.NOT_FOUND

    for span in await pair(captured, MODELS):
        assert attrs(span)["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
        assert attrs(span)["error.type"] == "NOT_FOUND"


async def test_health_checks_are_not_traced(
    served: tuple[Slow, RouterClient], captured: TelemetryCapture
) -> None:
    _, client = served
    async with grpc.aio.insecure_channel(client.target) as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert captured.spans() == []


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (grpc.aio.UsageError("the channel is closed"), grpc.StatusCode.UNKNOWN),
        (asyncio.CancelledError(), grpc.StatusCode.CANCELLED),
    ],
)
def test_a_client_call_that_cannot_start_ends_its_span_failed(
    captured: TelemetryCapture, exc: BaseException, code: grpc.StatusCode
) -> None:
    observer = client_observer()
    assert observer is not None
    call = observer.start("/" + CHAT, (("authorization", "Bearer sk-x"),))
    assert call.metadata[0] == ("authorization", "Bearer sk-x")
    assert any(key == "traceparent" for key, _ in call.metadata)
    call.fail(exc)
    [span] = captured.spans()
    assert (span.name, span.kind) == (CHAT, SpanKind.CLIENT)
    assert attrs(span)["rpc.grpc.status_code"] == code.value[0]
    assert span.status.status_code is StatusCode.ERROR


async def test_a_parent_handed_over_is_taken_only_from_the_process_not_the_wire(
    served: tuple[Slow, RouterClient], captured: TelemetryCapture
) -> None:
    """`LOCAL_PARENT` off the wire is a string like any other header: the caller's W3C context
    decides, and the value is ignored."""
    _, client = served
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    metadata = (
        (LOCAL_PARENT, f"00-{'1' * 32}-{'2' * 16}-01"),
        ("traceparent", f"00-{trace_id}-{parent_id}-01"),
    )
    async with grpc.aio.insecure_channel(client.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await pb_grpc.RouterServiceStub(channel).ListModels(
                pb.ListModelsRequest(), metadata=metadata, timeout=5
            )

    async def recorded() -> bool:
        return len(captured.spans()) == 1

    await eventually(recorded, what="the server span ended")
    [server] = captured.spans()
    assert server.context.trace_id == int(trace_id, 16)
    assert server.parent is not None and server.parent.span_id == int(parent_id, 16)
    assert server.parent.is_remote


def test_an_in_process_call_hands_the_current_span_over_and_starts_none(
    captured: TelemetryCapture,
) -> None:
    observer = client_observer(in_process=True)
    assert observer is not None
    alone = observer.start("/" + CHAT, (("authorization", "Bearer sk-x"),))
    assert alone.metadata == (("authorization", "Bearer sk-x"),)  # no span, nothing to hand
    with current().tracer.start_as_current_span("edge") as edge:
        call = observer.start("/" + CHAT, (("authorization", "Bearer sk-x"),))
    assert [key for key, _ in call.metadata] == ["authorization", LOCAL_PARENT]
    handed: object = call.metadata[1][1]  # the span itself, where gRPC has strings
    assert handed is edge
    call.fail(asyncio.CancelledError())
    assert [span.name for span in captured.spans()] == ["edge"]
