"""A stream's route on its first chunks (`route_on_first_message`, which the edge asks for):
the same head and bytes as from a route event of its own."""

from __future__ import annotations

import httpx

from clients.switchboard.v1 import router_service_pb2 as rs
from tests.http_edge.edge_messages import DEPLOYMENT, chunk, heartbeat, route, summary
from tests.http_edge.harness import StubRouter
from tests.http_edge.test_edge_chat import BODY, sse_bytes, stream_of


async def test_a_route_on_the_first_chunk_is_the_streams_route(
    stub: StubRouter, http: httpx.AsyncClient
) -> None:
    """The edge asks for the route on the first chunks (`route_on_first_message`): one message
    fewer before its first write; the head and the bytes are the same as from a route event."""
    chunks = (chunk(), chunk("Hi"), chunk(finish=True))
    first = rs.ChatStreamResponse()
    first.CopyFrom(chunks[0])
    first.first_route.CopyFrom(route(3))
    stub.on_chat_stream = stream_of(heartbeat(), first, *chunks[1:], summary())
    async with http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        body = await response.aread()
    assert response.status_code == 200
    assert response.headers["x-switchboard-deployment"] == DEPLOYMENT
    assert response.headers["x-switchboard-attempts"] == "3"
    assert body == sse_bytes(*chunks)
    request = stub.calls[0].request
    assert request.route_on_first_message and request.batch_chunks
