"""What an edge connection holds while its stream waits, and that it still does what uvicorn's
does with it: pipelined requests answered in order, a client slow to read throttling the
stream's writes until it reads (`http_edge/_lean_connection.py`)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge._slow_clients import MAX_PIPELINED, EdgeHttpProtocol
from tests.helpers import eventually
from tests.http_edge.edge_messages import chunk, route_message, summary
from tests.http_edge.harness import Edge, StubRouter

pytestmark = pytest.mark.timeout(30)

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
PING = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
MISSING = b"GET /no-such-path HTTP/1.1\r\nhost: x\r\n\r\n"


def connection_of(edge: Edge) -> EdgeHttpProtocol:
    (connection,) = edge.server.server_state.connections
    assert isinstance(connection, EdgeHttpProtocol)
    return connection


async def test_an_open_streams_connection_holds_no_deque(
    stub: StubRouter, edge: Edge, http: httpx.AsyncClient
) -> None:
    # A deque holds its first block (64 slots, ~0.6 KiB) from its making, empty or not: uvicorn
    # made three a connection (its pipeline, and an `asyncio.Event`'s waiters twice) that an
    # idle stream held for as long as it was open.
    waiting, go_on = asyncio.Event(), asyncio.Event()

    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        yield chunk("Hel")
        waiting.set()
        await go_on.wait()
        yield chunk("lo", finish=True)
        yield summary()

    stub.on_chat_stream = on_stream
    async with http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: ")
        await asyncio.wait_for(waiting.wait(), 15)
        connection = connection_of(edge)
        held = {
            "pipeline": connection.pipeline,
            "write wait": connection.flow._is_writable_event._waiters,
            "message wait": connection.cycle.message_event._waiters,
        }
        assert [name for name, value in held.items() if isinstance(value, deque)] == []
        go_on.set()
        rest = [line async for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    assert '"lo"' in rest[0]


async def test_pipelined_requests_are_answered_in_order(edge: Edge) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(PING + MISSING + PING)  # one write: the second and third wait their turn
        statuses = []
        for _ in range(3):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
            status, *lines = head.decode("latin-1").split("\r\n")
            length = next(
                int(v)
                for k, _, v in (li.partition(":") for li in lines)
                if k.lower() == "content-length"
            )
            await reader.readexactly(length)
            statuses.append(status)
    finally:
        writer.close()
        await writer.wait_closed()
    assert statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"]


async def test_a_client_slow_to_read_pauses_the_stream_until_it_reads(
    stub: StubRouter, edge: Edge
) -> None:
    # The client reads nothing until the edge's socket buffer is full and uvicorn waits for
    # it to drain (its flow control's event), then reads all: every chunk arrives, in order.
    big = "x" * 65_536
    sent = 0

    async def on_stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        nonlocal sent
        yield route_message()
        for _ in range(200):
            yield chunk(big)
            sent += 1
        yield chunk("end", finish=True)
        yield summary()

    stub.on_chat_stream = on_stream
    request = httpx.Request("POST", f"{edge.base_url}/v1/chat/completions", json=BODY)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    body = request.content
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port, limit=1 << 24)
    transport = cast(asyncio.Transport, writer.transport)
    transport.pause_reading()
    try:
        writer.write(head + b"content-length: %d\r\n\r\n" % len(body) + body)

        async def paused() -> bool:
            return connection_of(edge).flow.write_paused

        await eventually(paused, within=15, what="the edge paused writing to a client not reading")
        assert sent < 200
        transport.resume_reading()
        received = await asyncio.wait_for(reader.readuntil(b"data: [DONE]\n\n"), 15)
    finally:
        writer.close()
        await writer.wait_closed()
    assert received.count(big.encode()) == 200
    assert b'"end"' in received


async def test_a_pipeline_past_its_depth_is_answered_then_closed(
    stub: StubRouter, edge: Edge
) -> None:
    # A thousand requests in one write, behind one the router holds: the edge reads
    # MAX_PIPELINED of them ahead and no more (each read-ahead request holds its scope and
    # cycle: 17 MB so sent held 730 MB), answers those in order, and closes after the last,
    # the rest unanswered, as HTTP lets a server (a pipelining client retries them).
    released = asyncio.Event()

    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        await released.wait()
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n" + PING * 1000)
        await writer.drain()

        async def read_ahead() -> bool:
            return len(stub.calls) == 1 and len(connection_of(edge).pipeline) >= MAX_PIPELINED

        await eventually(read_ahead, within=15, what="the pipelined requests read")
        assert len(connection_of(edge).pipeline) == MAX_PIPELINED
        released.set()
        answers = (await asyncio.wait_for(reader.read(), 15)).split(b"HTTP/1.1 ")[1:]
    finally:
        writer.close()
        await writer.wait_closed()
    assert len(answers) == 1 + MAX_PIPELINED
    assert answers[0].startswith(b"200 OK") and b'"object":"list"' in answers[0]
    assert all(answer.startswith(b"200 OK") for answer in answers[1:])
    assert b"connection: close" in answers[-1] and b"connection: close" not in answers[-2]
