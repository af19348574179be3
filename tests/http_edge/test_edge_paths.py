"""The path forms real clients send: a trailing slash, a doubled slash (a base URL pasted with
its own trailing slash), on every router of the edge, answered as the plain path (no redirect,
whose absolute `http://` URL breaks behind a TLS proxy and makes clients send the body again)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge.edge_messages import DEPLOYMENT, chunk, completion, route
from tests.http_edge.harness import Edge, EdgeFactory, StubRouter

MODELS = rs.ListModelsResponse(models=[rs.ModelInfo(id=DEPLOYMENT, owned_by="openai", created=1)])
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def _list_models(request: Any, context: Any) -> rs.ListModelsResponse:
    return MODELS


async def _chat(request: Any, context: Any) -> rs.ChatResponse:
    return rs.ChatResponse(completion=completion("hello"), route=route())


async def _chat_stream(request: Any, context: Any) -> Any:
    yield chunk()
    yield chunk("hello", finish=True)


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions/", "/v1//chat/completions", "//v1/chat/completions//"]
)
async def test_chat_with_a_trailing_or_doubled_slash_is_served_without_a_redirect(
    stub: StubRouter, http: httpx.AsyncClient, path: str
) -> None:
    stub.on_chat = _chat
    response = await http.post(_url(http, path), json=CHAT)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "hello"
    assert [call.method for call in stub.calls] == ["Chat"]  # the body was sent once


async def test_a_streamed_chat_with_a_trailing_slash_streams(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    stub.on_chat_stream = _chat_stream
    response = await http.post("/v1/chat/completions/", json={**CHAT, "stream": True})
    assert response.status_code == 200, response.text
    assert '"hello"' in response.text and response.text.endswith("data: [DONE]\n\n")


async def test_the_sdk_with_a_doubled_slash_in_its_base_url(stub: StubRouter, edge: Edge) -> None:
    stub.on_chat, stub.on_list_models = _chat, _list_models
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1//", api_key="sk-test", max_retries=0, timeout=10
    ) as sdk:
        answer = await sdk.chat.completions.create(**CHAT)  # type: ignore[call-overload]
        assert answer.choices[0].message.content == "hello"
        assert [model.id for model in (await sdk.models.list()).data] == [DEPLOYMENT]
        assert (await sdk.models.retrieve(DEPLOYMENT)).id == DEPLOYMENT


@pytest.mark.parametrize("path", ["/v1/models/", "/v1//models", "/v1/models//"])
async def test_the_models_path_with_a_slash_is_the_list(
    stub: StubRouter, http: httpx.AsyncClient, path: str
) -> None:
    stub.on_list_models = _list_models
    response = await http.get(_url(http, path))
    assert response.status_code == 200, response.text
    assert [model["id"] for model in response.json()["data"]] == [DEPLOYMENT]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/messages/", 200),  # Anthropic's
        ("POST", "/v1/responses/", 200),
        ("POST", "/v1/completions/", 200),
        ("GET", "/v1beta/models/", 200),  # Gemini's
        ("POST", "/v1beta/models/gpt-4o-mini:generateContent/", 200),
        ("GET", "/api/tags/", 200),  # Ollama's
        ("GET", "/api//version", 200),
        ("POST", "/api/chat/", 200),
        ("GET", "/healthz/", 200),
        ("GET", "/metrics/", 404),  # its own: metrics are not configured in these tests
        ("GET", "/openapi.json/", 200),
        ("GET", "/admin/api/status/", 401),  # the route, which wants its token
        ("GET", "//admin//keys", 401),
        ("GET", "/", 200),  # the root stays the root
        ("GET", "//", 200),
    ],
)
async def test_every_router_takes_its_paths_with_extra_slashes(
    stub: StubRouter, start_edge: EdgeFactory, method: str, path: str, status: int
) -> None:
    stub.on_chat, stub.on_list_models = _chat, _list_models
    edge = await start_edge(admin_token="admin-secret")
    body = _body(path)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        response = await http.request(method, _url(http, path), json=body)
    assert response.status_code == status, response.text
    assert "location" not in response.headers and "Unknown request URL" not in response.text


def _url(http: httpx.AsyncClient, path: str) -> str:
    """The absolute URL: httpx joins a path to its base URL without its leading slashes."""
    return f"{http.base_url}{path}"


def _body(path: str) -> dict[str, Any] | None:
    """A body each POST route answers."""
    if "messages" in path:
        return {**CHAT, "max_tokens": 16}
    if "responses" in path:
        return {"model": "gpt-4o-mini", "input": "hi"}
    if path.startswith("/v1/completions"):
        return {"model": "gpt-4o-mini", "prompt": "hi"}
    if "generateContent" in path:
        return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    if "/api/chat" in path:
        return {**CHAT, "stream": False}
    return None


async def test_a_path_with_no_route_is_still_a_404_not_a_redirect(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/v1/nothing/", "/v1//nothing"):
        response = await http.post(_url(http, path), json=CHAT)
        assert response.status_code == 404 and "location" not in response.headers
        assert response.json()["error"]["type"] == "invalid_request_error"


async def _handshake(edge: Edge, path: str) -> bytes:
    """The edge's answer to a WebSocket handshake on `path` (the stub router refuses the
    session: the route's denial, OpenAI's error JSON, where no route is a bare 403)."""
    host, port = edge.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET {path}?model=voice HTTP/1.1\r\nhost: edge\r\nupgrade: websocket\r\n"
            "connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "sec-websocket-version: 13\r\nauthorization: Bearer sk-caller\r\n\r\n".encode()
        )
        return await reader.read(65536)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_realtime_socket_takes_its_path_with_extra_slashes(edge: Edge) -> None:
    plain = await _handshake(edge, "/v1/realtime")
    assert b'"error"' in plain and not plain.startswith(b"HTTP/1.1 403")
    for path in ("/v1/realtime/", "/v1//realtime"):
        answer = await _handshake(edge, path)
        assert answer.split(b"\r\n", 1)[0] == plain.split(b"\r\n", 1)[0], answer
        assert b'"error"' in answer
