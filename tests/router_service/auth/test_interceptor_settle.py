"""A call's end writes through the interceptor (its usage settlement, a stream's slot) reach the
store whatever cancels the handler's task meanwhile, and however often: the caller leaving, then
a stop cancelling the calls still running. The store holds the settlement until the test lets it
go, so the cancellations land while it is in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import router_service_pb2_grpc as rs_grpc
from router_service.auth import Gate
from router_service.config import AuthConfig
from router_service.engine._tokens import estimate_chat_tokens
from router_service.server._interceptors import AuthInterceptor
from router_service.state import MemoryStateStore
from tests.helpers import serve_grpc
from tests.http_edge.edge_messages import chunk, completion, summary
from tests.http_edge.harness import StubRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client

KEY = "sk-settling-caller"
STREAMS = "client:svc:streams"


class HeldSettlement(MemoryStateStore):
    """Memory state whose token corrections wait until `go` is set (a round trip to a shared
    store that takes its time), and that says when one started and which were made."""

    completes_without_waiting = False

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.corrections: list[int] = []

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        self.started.set()
        await self.go.wait()
        await super().add_tokens(resource, window, delta, requests, lease_id=lease_id)
        self.corrections.append(delta)


Served = tuple[StubRouter, rs_grpc.RouterServiceStub, HeldSettlement]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    store = HeldSettlement()
    caller = client("svc", KEY, tpm=100_000, max_concurrent_streams=1)
    gate = Gate(
        AuthConfig.model_validate({"clients": [caller]}),
        store,
        max_tokens_ceiling=1000,
        known_model=lambda model: True,
    )
    stub_router = StubRouter()
    async with (
        serve_grpc(
            (rs_grpc.add_RouterServiceServicer_to_server, stub_router),
            interceptors=[AuthInterceptor(gate, stream_ttl_s=60)],
        ) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        yield stub_router, rs_grpc.RouterServiceStub(channel), store


async def _cancel_twice_while_settling(store: HeldSettlement, handler: asyncio.Task[Any]) -> None:
    """Cancel the handler's task twice while its settlement waits, then let the store answer;
    back once the task is over."""
    await store.started.wait()
    for _ in range(2):
        handler.cancel()
        # A turn for the task to take the cancellation before the next one comes.
        for _ in range(3):
            await asyncio.sleep(0)
    store.go.set()
    await asyncio.wait((handler,))


async def test_a_stream_settles_and_gives_its_slot_back_through_two_cancellations(
    served: Served,
) -> None:
    stub_router, stub, store = served
    handlers: list[asyncio.Task[Any]] = []

    async def answer(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        yield chunk("hi")
        yield summary()  # 7 tokens used

    stub_router.on_chat_stream = answer
    call = stub.ChatStream(chat_stream(), metadata=bearer(KEY), timeout=30)
    received = [await call.read(), await call.read()]  # the whole answer: settling comes next
    assert received[1].summary.usage.total_tokens == 7
    assert await store.held([STREAMS]) == [1]
    await _cancel_twice_while_settling(store, handlers[0])
    # The estimate counted at admission corrected to the 7 tokens the summary reported.
    assert store.corrections == [7 - estimate_chat_tokens(chat_stream().params)]
    assert await store.held([STREAMS]) == [0]
    call.cancel()


async def test_a_unary_call_settles_through_two_cancellations(served: Served) -> None:
    stub_router, stub, store = served
    handlers: list[asyncio.Task[Any]] = []

    async def answer(request: Any, context: Any) -> rs.ChatResponse:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        return rs.ChatResponse(completion=completion("ok"))

    stub_router.on_chat = answer
    call = stub.Chat(chat(), metadata=bearer(KEY), timeout=30)
    await store.started.wait()
    await _cancel_twice_while_settling(store, handlers[0])
    assert store.corrections == [5 - estimate_chat_tokens(chat().params)]  # 5 tokens reported
    call.cancel()
