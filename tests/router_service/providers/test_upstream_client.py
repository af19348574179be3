"""The router's upstream client (`create_http_client` → `UpstreamClient`), against a loopback
aiohttp server: adapters' requests go out exactly as built — our headers, no cookies kept from an
earlier answer, no redirect followed — with the timeouts the adapter set."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from clients import chat_params_from_openai
from router_service.clock import SYSTEM_CLOCK
from router_service.config import HttpConfig, ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import ChatCall, OpenAIAdapter, create_http_client
from router_service.providers._http import UpstreamClient
from router_service.telemetry._state import VERSION
from tests.helpers import serve_app

pytestmark = pytest.mark.timeout(20)

COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
}


class Upstream:
    """Answers with a cookie and records what each request carried."""

    def __init__(self) -> None:
        self.seen: list[CIMultiDictProxy[str]] = []
        self.redirect = False

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers)
        if self.redirect:
            raise web.HTTPTemporaryRedirect("/elsewhere")
        response = web.json_response(COMPLETION)
        response.set_cookie("session", "from-the-first-answer")
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat)
    app.router.add_post("/elsewhere", state.chat)
    async with serve_app(app) as base_url:
        yield state, f"{base_url}/v1"


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_requests_go_out_as_built(
    upstream: tuple[Upstream, str], transport: Literal["aiohttp", "httpx"]
) -> None:
    state, base_url = upstream
    http = create_http_client(HttpConfig(transport=transport))
    assert isinstance(http, UpstreamClient)
    # A bare key string: the config-file shorthand.
    config = ProviderConfig(kind="openai", base_url=base_url, keys=["sk-upstream"])  # type: ignore[list-item]
    adapter = OpenAIAdapter("p", config, http, SYSTEM_CLOCK)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    params, _ = chat_params_from_openai(body)
    call = ChatCall("m", "sk-upstream", params, 5.0)
    async with http:
        first = await adapter.chat(call)
        second = await adapter.chat(call)
        state.redirect = True
        with pytest.raises(UpstreamFailure) as caught:
            await adapter.chat(call)
    assert first.choices[0].message.text == second.choices[0].message.text == "hi"
    assert caught.value.outcome is Outcome.UPSTREAM_ERROR  # a redirect is not followed
    assert len(state.seen) == 3
    for headers in state.seen:
        assert headers["authorization"] == "Bearer sk-upstream"
        assert headers["user-agent"] == f"switchboard/{VERSION}"
        assert headers["accept"] == "application/json"
        assert "accept-encoding" not in headers
        # The first answer's cookie never rides along on a later request.
        assert "cookie" not in headers


class HoldingUpstream:
    """Streams one chunk, then holds the stream open until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {**COMPLETION, "object": "chat.completion.chunk"}
        chunk["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await self.release.wait()
        await response.write(b"data: [DONE]\n\n")
        return response


def _holders_of(marker: str) -> list[object]:
    """Live request objects and body dicts that still carry the prompt `marker`."""

    def carries(obj: object) -> bool:
        if isinstance(obj, httpx.Request):
            return marker.encode() in obj.content
        return isinstance(obj, dict) and "messages" in obj and marker in str(obj["messages"])

    gc.collect()
    return [obj for obj in gc.get_objects() if carries(obj)]


@pytest.mark.parametrize("transport", ["lean", "aiohttp", "httpx"])
async def test_an_open_stream_does_not_hold_its_request_body(
    transport: Literal["lean", "aiohttp", "httpx"],
) -> None:
    # A stream is open for as long as the model writes; were its request (the encoded body)
    # or the body's dict kept that long, every open stream would hold its prompt twice more.
    state = HoldingUpstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", state.chat)
    marker = "prompt-" + "x" * 4096
    body = {"model": "m", "messages": [{"role": "user", "content": marker}], "stream": True}
    params, _ = chat_params_from_openai(body)
    del body
    call = ChatCall("m", "sk-upstream", params, 5.0)
    async with serve_app(app) as base_url:
        http = create_http_client(HttpConfig(transport=transport))
        # A bare key string: the config-file shorthand.
        config = ProviderConfig(kind="openai", base_url=f"{base_url}/v1", keys=["sk-upstream"])  # type: ignore[list-item]
        adapter = OpenAIAdapter("p", config, http, SYSTEM_CLOCK)
        try:
            async with http, adapter.stream_chat(call) as chunks:
                first = await anext(aiter(chunks))
                assert first.choices[0].delta.text == "hi"
                assert _holders_of(marker) == []
                state.release.set()
                assert [c async for c in chunks] == []
        finally:
            state.release.set()  # the server's shutdown waits for its handlers
