"""The interceptor around handlers of our own (the edge tests' stub router): the caller reaches the
servicer, and a stream slot is given back whichever way the stream ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from clients import ErrorDetails
from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import router_service_pb2_grpc as rs_grpc
from router_service.auth import Caller, Gate, current_caller
from router_service.config import AuthConfig
from router_service.server._interceptors import AuthInterceptor
from router_service.state import MemoryStateStore
from tests.helpers import eventually, serve_grpc
from tests.http_edge.edge_messages import chunk, completion
from tests.http_edge.harness import StubRouter, abort_with
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client

KEY = "sk-stub-caller"


Served = tuple[StubRouter, rs_grpc.RouterServiceStub, MemoryStateStore]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    store = MemoryStateStore()
    config = AuthConfig.model_validate({"clients": [client("svc", KEY, max_concurrent_streams=2)]})
    gate = Gate(config, store, max_tokens_ceiling=100, known_model=lambda model: True)
    stub_router = StubRouter()
    async with (
        serve_grpc(
            (rs_grpc.add_RouterServiceServicer_to_server, stub_router),
            interceptors=[AuthInterceptor(gate, stream_ttl_s=60)],
        ) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        yield stub_router, rs_grpc.RouterServiceStub(channel), store


async def test_the_servicer_sees_its_caller(served: Served) -> None:
    stub_router, stub, _ = served
    seen: list[Caller | None] = []

    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        seen.append(current_caller())
        return rs.ChatResponse(completion=completion("ok"))

    stub_router.on_chat = on_chat
    await stub.Chat(chat(), metadata=bearer(KEY))
    assert [c.name if c else None for c in seen] == ["svc"]
    assert current_caller() is None  # nothing leaks into the caller's own context


async def test_stream_slots_come_back_when_streams_fail(served: Served) -> None:
    stub_router, stub, store = served

    async def failing(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield chunk("partial")
        details = ErrorDetails(grpc.StatusCode.UNAVAILABLE, "upstream went away", "UPSTREAM_ERROR")
        await abort_with(context, details)

    stub_router.on_chat_stream = failing
    for _ in range(3):  # more than the limit of two: each failure gave its slot back
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _message in stub.ChatStream(chat_stream(), metadata=bearer(KEY)):
                pass
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE

    async def released() -> bool:  # the status reaches the caller just before the cleanup ends
        return await store.held(["client:svc:streams"]) == [0]

    await eventually(released, what="stream slots released")


async def test_bounds_are_checked_before_the_handler(served: Served) -> None:
    stub_router, stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Chat(chat(max_completion_tokens=101), metadata=bearer(KEY))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert stub_router.calls == []
