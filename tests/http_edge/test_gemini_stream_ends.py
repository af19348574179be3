"""How a Gemini API stream the router did not end itself ends: with a chunk holding only
Google's error, its `code` one Gemini documents (500 INTERNAL), never a 502 it never says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge.edge_messages import chunk, route_message
from tests.http_edge.harness import EdgeFactory, StubRouter

BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_a_stream_ended_without_its_summary_is_internal(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        yield chunk("Hel")  # and no summary

    stub.on_chat_stream = stream
    edge = await start_edge()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        answer = await http.post("/v1beta/models/m:streamGenerateContent", json=BODY)
    assert answer.status_code == 200
    last = orjson.loads(answer.content)[-1]
    assert set(last) == {"error"}
    assert (last["error"]["code"], last["error"]["status"]) == (500, "INTERNAL")
