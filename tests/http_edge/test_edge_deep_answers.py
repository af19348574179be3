"""An upstream answer holding JSON nested deep (a field it adds, beside the ones OpenAI's shape
has): read up to 1024 levels, written to 254, and placed deeper in the answer the edge writes
than in the upstream's. Never a 500 or a stream cut off: the upstream's failure, typed. Through
a real upstream on loopback, a router and the edge.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from http_edge import EdgeSettings
from tests.conftest import HANG_GUARD, StartRouter
from tests.helpers import serve_app
from tests.http_edge.harness import start_edge, stop_edge
from tests.http_edge.test_edge_deep_json import nested


def _completion(where: str, deep: Any, stream: bool) -> dict[str, Any]:
    message = {"role": "assistant", "content": "hi"}
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    choice["delta" if stream else "message"] = message
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "u"}
    answer["choices"] = [choice]
    {"choice": choice, "message": message, "answer": answer}[where]["zz"] = deep
    return answer


def _upstream(where: str, depth: int) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        stream = bool((await request.json()).get("stream"))
        # The standard library's writer: orjson's stops at 254 levels.
        answer = json.dumps(_completion(where, nested(depth), stream)).encode()
        if not stream:
            return web.Response(body=answer, content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: " + answer + b"\n\ndata: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@pytest.fixture
async def deep_edge(
    start_router: StartRouter, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    where, depth = request.param
    async with serve_app(_upstream(where, depth)) as url:
        provider = {"base_url": f"{url}/v1", "keys": ["k"], "timeouts": dict(HANG_GUARD)}
        model = {"deployments": [{"provider": "deep", "model": "u"}]}
        router = await start_router({"providers": {"deep": provider}, "models": {"m": model}})
        edge = await start_edge(EdgeSettings(router_target=router.server.address))
        try:
            async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
                yield http
        finally:
            await stop_edge(edge)


# The deep value where the router's codec took it (its object's extras) and how deep: past
# what the edge's answer can hold there, within what the codec wrote for the object.
PLACES = [("choice", 248), ("message", 247), ("answer", 250), ("choice", 400)]


@pytest.mark.parametrize("deep_edge", PLACES, indirect=True)
@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_nested_too_deep_is_the_upstreams_failure(
    deep_edge: httpx.AsyncClient, stream: bool
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    response = await deep_edge.post("/v1/chat/completions", json=body)  # read whole: not cut
    assert response.status_code != 500, response.text[:300]
    assert "nternal" not in response.text, response.text[-300:]
    if stream and response.status_code == 200:
        assert b"data: [DONE]" in response.content  # ended as a stream ends
    else:
        assert response.status_code >= 500  # the upstream's failure: 502 or 503
        assert response.json()["error"]["type"] == "upstream_error"
