"""The edge's request timeout (issue #7): the router sees it as its gRPC deadline, and a router
that does not answer in time is a 504 in OpenAI's shape, for JSON and streams alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge.harness import EdgeFactory, StubRouter

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_timeout_is_504_for_the_sdk_and_the_router_sees_the_deadline(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    remaining: list[float | None] = []
    # Set when both handlers ran: on a loaded machine a handler may first run after the edge
    # already answered 504 (the deadline is the client's as much as the router's).
    reached = asyncio.Event()

    def note(context: Any) -> None:
        remaining.append(context.time_remaining())
        if len(remaining) == 2:
            reached.set()

    async def silent(request: Any, context: Any) -> rs.ChatResponse:
        note(context)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def silent_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        note(context)
        await asyncio.Event().wait()
        yield rs.ChatStreamResponse()  # pragma: no cover

    stub.on_chat, stub.on_chat_stream = silent, silent_stream
    edge = await start_edge(request_timeout_s=0.3)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=0, timeout=5
    ) as sdk:
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as caught:
                await sdk.chat.completions.create(model="m", messages=HI, stream=stream)
            assert caught.value.status_code == 504
            assert caught.value.type == "timeout"
            assert caught.value.code == "deadline_exceeded"
    await asyncio.wait_for(reached.wait(), 15)  # the router's handlers ran, each once
    assert len(remaining) == 2
    # The router got a deadline no later than the edge's timeout. (On a loaded machine the handler
    # may first run after it already passed, so the remaining time can be zero or below; grpc
    # rounds deadlines up to its timer granularity, hence the few milliseconds of slack.)
    assert all(r is not None and r <= 0.3 + 0.02 for r in remaining), remaining
    await asyncio.wait_for(stub.cancelled.wait(), 15)  # the router's handlers were cancelled
