"""An OpenAI-compatible upstream that streams the chat chunks a test scripts (one-off wire
shapes of real servers the fake does not play), and the openai SDK on an edge over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import orjson
from aiohttp import web

from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.helpers import serve_app

__all__ = ["call", "chunk", "scripted_sdk"]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A `chat.completion.chunk` of one choice."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "g",
        "choices": [choice],
    }


def call(function: dict[str, str], **said: Any) -> dict[str, Any]:
    """A delta of one tool call (`said`: its `id`, `type`, `index`…)."""
    return {"tool_calls": [{**said, "function": function}]}


@asynccontextmanager
async def scripted_sdk(
    chunks: list[dict[str, Any]], start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK on an edge over a router whose group `chain` streams `chunks` to every call."""

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in chunks:
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    async with serve_app(app) as base_url:
        edge = await start_edge(await start_router(base_config(f"{base_url}/v1")))
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        ) as client:
            yield client
