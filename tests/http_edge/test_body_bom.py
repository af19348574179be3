"""A JSON body that starts with a UTF-8 byte order mark (Windows PowerShell's `Out-File` and
Notepad write one; `curl --data-binary @file.json` sends it on) is read as the JSON after it,
on every JSON entrance, as RFC 8259 (8.1) lets a parser do, Python's `json.loads` of bytes does,
and the batch files' lines already did; one anywhere else is still invalid JSON."""

from __future__ import annotations

import codecs
import gzip
from typing import Any

import httpx
import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge.edge_messages import completion, route
from tests.http_edge.harness import EdgeFactory, StubRouter

BOM = codecs.BOM_UTF8
CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
# One of each JSON entrance's bodies: OpenAI's chat, legacy completions and Responses,
# Anthropic's Messages, Gemini's generateContent, Ollama's chat.
ENTRANCES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": {"model": "gpt-4o-mini", "prompt": "hi"},
    "/v1/responses": {"model": "gpt-4o-mini", "input": "hi"},
    "/v1/messages": {**CHAT, "max_tokens": 16},
    "/v1beta/models/gpt-4o-mini:generateContent": {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    },
    "/api/chat": {**CHAT, "stream": False},
}


async def _chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
    return rs.ChatResponse(completion=completion("Hello!"), route=route())


@pytest.fixture
async def http(stub: StubRouter, start_edge: EdgeFactory) -> Any:
    stub.on_chat = _chat
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(("path", "body"), ENTRANCES.items(), ids=ENTRANCES.keys())
async def test_a_body_after_a_byte_order_mark_is_read(
    http: httpx.AsyncClient, stub: StubRouter, path: str, body: dict[str, Any]
) -> None:
    headers = {"content-type": "application/json"}
    response = await http.post(path, content=BOM + orjson.dumps(body), headers=headers)
    assert response.status_code == 200, response.text
    [call] = stub.calls
    assert call.request.params.messages[0].text == "hi"


async def test_a_compressed_body_after_a_byte_order_mark_is_read(
    http: httpx.AsyncClient, stub: StubRouter
) -> None:
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    raw = gzip.compress(BOM + orjson.dumps(CHAT))
    response = await http.post("/v1/chat/completions", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert len(stub.calls) == 1


@pytest.mark.parametrize("raw", [BOM + BOM + b"{}", b" " + BOM + b"{}", b"{}" + BOM])
async def test_a_byte_order_mark_elsewhere_is_invalid_json(
    http: httpx.AsyncClient, stub: StubRouter, raw: bytes
) -> None:
    response = await http.post("/v1/chat/completions", content=raw)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_json")
    assert error["message"].startswith("Invalid JSON body: ")
    assert stub.calls == []
