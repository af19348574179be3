"""`x-should-retry: false` where the router may have done the work already, whatever the error:

- a `POST /v1/responses` continuing a conversation, failing after its answer when the answer
  cannot be added to the conversation (the shared store down): an SDK's retry runs, and bills,
  the model again (and, the store down, finds the conversation NOT_FOUND: a replica reads its
  local state then);
- items appended to a conversation as the store stopped answering (the write may have landed: a
  retry would add them twice);
- a client secret the store failed to confirm (`client_key_unconfirmed`: it may exist): a retry
  issues another one, which the first's, the error says, must be looked for and revoked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import router_service_pb2_grpc as rs_grpc
from http_edge import EdgeSettings
from router_service.auth._issued_errors import unconfirmed
from router_service.errors import StoreUnavailableError
from router_service.server._errors import error_details
from tests.helpers import serve_grpc
from tests.http_edge.edge_messages import completion, route
from tests.http_edge.harness import StubRouter, abort_with, start_edge, stop_edge

pytestmark = pytest.mark.timeout(30)


class _OutageStub(StubRouter):
    """A router in a store outage: conversation loads answer (empty, as from local state), its
    appends and the client secrets it issues fail as the real one's do."""

    async def LoadConversation(self, request: Any, context: Any) -> rs.LoadConversationResponse:
        self._record("LoadConversation", request, context)
        return rs.LoadConversationResponse()

    async def UpdateConversation(self, request: Any, context: Any) -> Any:
        self._record("UpdateConversation", request, context)
        await abort_with(context, error_details(StoreUnavailableError("the store is down")))

    async def CreateRealtimeClientSecret(self, request: Any, context: Any) -> Any:
        self._record("CreateRealtimeClientSecret", request, context)
        await abort_with(context, error_details(unconfirmed("key_1", "app", "", ephemeral=True)))


@asynccontextmanager
async def _sdk_at(router: StubRouter) -> AsyncIterator[openai.AsyncOpenAI]:
    """The openai SDK (its default two retries) through an edge in front of `router`."""
    async with serve_grpc(
        (rs_grpc.add_RouterServiceServicer_to_server, router),
        (health_pb2_grpc.add_HealthServicer_to_server, router.health),
    ) as target:
        await router.health.set("", health_pb2.HealthCheckResponse.SERVING)
        edge = await start_edge(EdgeSettings(router_target=target), None)
        try:
            async with openai.AsyncOpenAI(
                base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=2, timeout=10
            ) as sdk:
                yield sdk
        finally:
            await stop_edge(edge)


async def test_a_conversation_not_updated_after_its_answer_is_not_retried() -> None:
    router = _OutageStub()

    async def answer(request: Any, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("hi"), route=route())

    router.on_chat = answer
    async with _sdk_at(router) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.responses.create(model="m", input="hi", conversation="conv_1", store=False)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    methods = [call.method for call in router.calls]
    assert methods == ["LoadConversation", "Chat", "UpdateConversation"]


async def test_a_client_secret_maybe_issued_is_not_issued_again() -> None:
    router = _OutageStub()
    async with _sdk_at(router) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.realtime.client_secrets.create(session={"type": "realtime", "model": "m"})
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert [call.method for call in router.calls] == ["CreateRealtimeClientSecret"]


async def test_items_maybe_appended_are_not_appended_again() -> None:
    router = _OutageStub()
    async with _sdk_at(router) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.conversations.items.create(
                "conv_1", items=[{"type": "message", "role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert [call.method for call in router.calls] == ["UpdateConversation"]
