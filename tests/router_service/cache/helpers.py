"""Helpers of the response cache tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cache._cache import ENTRY_BYTES
from router_service.cache._keys import cache_key, document_name
from tests.conftest import RouterHandle


async def entry_bytes(router: RouterHandle, request: pb.ChatRequest) -> int:
    """What one kept answer counts against its client's quota (open mode: client "")."""
    generation = await router.runtime.cache.generation(request.params.model)
    name = document_name("", cache_key("chat", "", request.params, generation))
    (data,) = await router.runtime.store.get_documents([name])
    assert data is not None
    return len(data) + ENTRY_BYTES


class Upstream:
    """A `fresh` call the test lets answer (or fail) when it says."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.fails = False

    def call(self) -> Callable[[], Awaitable[pb.ChatResponse]]:
        async def fresh() -> pb.ChatResponse:
            self.calls += 1
            self.started.set()
            await self.go.wait()
            if self.fails:
                raise RuntimeError("upstream failed")
            message = chat_pb2.ChatMessage(
                role=chat_pb2.ROLE_ASSISTANT, text=f"answer {self.calls}"
            )
            completion = chat_pb2.ChatCompletion(
                id=f"c{self.calls}", choices=[chat_pb2.Choice(message=message)]
            )
            return pb.ChatResponse(
                completion=completion, route=routing_pb2.RouteInfo(deployment="d")
            )

        return fresh
