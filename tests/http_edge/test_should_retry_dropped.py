"""`x-should-retry` for a router the edge lost: `false` for a Chat whose connection dropped after
the router took it (it may have run, and billed: an SDK's retry runs it twice), `true` for one no
router can have seen (no connection came up in the client's bounded wait). The real openai SDK,
with its retries, against a real edge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from openai.types.chat import ChatCompletionMessageParam

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge._state import EdgeState
from tests.clients.test_retries import cut_proxy
from tests.helpers import free_port
from tests.http_edge.edge_messages import chunk, completion, route, summary
from tests.http_edge.harness import EdgeFactory, StubRouter

pytestmark = pytest.mark.timeout(30)
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("warm", [False, True], ids=["first call", "connection up"])
async def test_a_chat_whose_router_connection_dropped_is_not_retried(
    stub: StubRouter, start_edge: EdgeFactory, stream: bool, warm: bool
) -> None:
    """Sent after the client's wait for its first connection, or at once on one already up."""
    took = asyncio.Event()

    def chats() -> int:
        return sum(call.method in ("Chat", "ChatStream") for call in stub.calls)

    async def models(request: Any, context: Any) -> rs.ListModelsResponse:
        return rs.ListModelsResponse()

    async def first_hangs() -> None:
        if chats() == 1:  # the router works on it when its connection drops
            took.set()
            await asyncio.Event().wait()

    async def answer(request: Any, context: Any) -> rs.ChatResponse:
        await first_hangs()
        return rs.ChatResponse(completion=completion("again"), route=route())

    async def chunks(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        await first_hangs()  # before its first chunk: the edge has not answered yet
        for message in (chunk("again"), chunk(finish=True), summary()):
            yield message

    stub.on_chat, stub.on_chat_stream, stub.on_list_models = answer, chunks, models
    async with cut_proxy(stub.target) as (proxy, via):
        edge = await start_edge(router_target=via)
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=2, timeout=10
        ) as sdk:
            if warm:
                await sdk.models.list()
            asked = sdk.chat.completions.create(model="m", messages=HI, stream=stream)
            pending = asyncio.ensure_future(asked)
            async with asyncio.timeout(10):
                await took.wait()
            proxy.cut()
            with pytest.raises(openai.APIStatusError) as caught:
                await pending
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert chats() == 1  # run once: not again by the SDK


@pytest.mark.parametrize("stream", [False, True])
async def test_a_chat_no_router_could_take_is_retried(
    start_edge: EdgeFactory, stream: bool
) -> None:
    attempts: list[object] = []

    async def count(request: object) -> None:
        attempts.append(request)

    # Nothing listens there; each try waits a moment for a connection, not the default 3 s.
    edge = await start_edge(router_target=f"127.0.0.1:{free_port()}", router_ready_wait_s=0.01)
    hooked = openai.DefaultAsyncHttpxClient(event_hooks={"request": [count]})  # the SDK's tries
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=1, http_client=hooked
    ) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="m", messages=HI, stream=stream)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "true"
    assert len(attempts) == 2  # each waited for a connection (bounded), then failed unsent


async def test_the_edges_router_client_waits_as_long_as_its_setting_says(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(router_ready_wait_s=0.25)
    app = edge.server.config.app
    assert isinstance(app, FastAPI)
    state = app.state.edge
    assert isinstance(state, EdgeState)
    assert state.router()._ready_wait_s == 0.25  # what `ready_wait_s=` it was made with
