"""Over the wire a call's gRPC SERVER span is the span of the request its handler serves
(`_grpc.served_call`); a request made in a task of its own (work that outlives the call: a
background response) and a second request of the same call have spans of their own under it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.trace import SpanKind

from clients import RouterClient
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import router_service_pb2_grpc as pb_grpc
from router_service.clock import SYSTEM_CLOCK
from router_service.engine import RequestContext
from router_service.telemetry import chat_span, server_interceptors
from router_service.telemetry.testing import TelemetryCapture
from tests.helpers import eventually, serve_grpc
from tests.router_service.telemetry.spans import Trace, attrs

CHAT = "switchboard.v1.RouterService/Chat"


def _request(model: str) -> None:
    with chat_span(
        chat_pb2.ChatParams(model=model), RequestContext(model, SYSTEM_CLOCK), stream=False
    ):
        pass


class Requests(pb_grpc.RouterServiceServicer):
    """Chat serves a request in a task of its own first (its context a copy of the call's), then
    two in the call's task."""

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChatResponse:
        await asyncio.create_task(_in_a_task())
        _request("first")
        _request("second")
        return pb.ChatResponse()


async def _in_a_task() -> None:
    _request("apart")


@pytest.fixture
async def client(captured: TelemetryCapture) -> AsyncIterator[RouterClient]:
    servicer = Requests()  # type: ignore[abstract]  # only Chat is called
    async with serve_grpc(
        (pb_grpc.add_RouterServiceServicer_to_server, servicer), interceptors=server_interceptors()
    ) as target:
        router = RouterClient(target)
        try:
            yield router
        finally:
            await router.aclose()


async def test_the_first_request_in_the_calls_task_has_the_server_span(
    client: RouterClient, captured: TelemetryCapture
) -> None:
    await client.chat(pb.ChatRequest(), timeout=5)

    async def all_ended() -> bool:
        return len(captured.spans()) == 3

    await eventually(all_ended, what="the call's spans ended")
    trace = Trace(captured.spans())
    server = trace.one(CHAT)
    assert server.kind is SpanKind.SERVER and server.parent is None
    assert attrs(server)["gen_ai.request.model"] == "first"
    assert attrs(server)["rpc.grpc.status_code"] == 0
    own = trace.children(server)
    assert [(s.name, s.kind) for s in own] == [
        ("chat apart", SpanKind.INTERNAL),
        ("chat second", SpanKind.INTERNAL),
    ]
