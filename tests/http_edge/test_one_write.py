"""A response's head leaves with its first body bytes, in one write (`http_edge/_one_write.py`),
on a real uvicorn edge read over raw sockets. The connection's transport is wrapped to record
each write the edge makes; what the client reads is checked as well. A head whose body is not
ready leaves alone (else the client would wait for it: `ANSWER_S` bounds that wait)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest
import uvicorn

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge._slow_clients import edge_protocol
from tests.helpers import eventually
from tests.http_edge.edge_messages import chunk, completion, route, route_message, summary
from tests.http_edge.harness import Edge, EdgeFactory, StubRouter
from tests.http_edge.test_slow_clients import ANSWER_S, HEAD, connected, response

pytestmark = pytest.mark.timeout(30)

BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
STREAM = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
)


class Recorder:
    """A transport that records what is written through it (one entry a write or writelines)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def writelines(self, data: Iterable[bytes]) -> None:
        parts = list(data)
        self.writes.append(b"".join(parts))
        self.transport.writelines(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def recorded(server: uvicorn.Server) -> Recorder:
    """The transport of the server's one connection, recording from now on."""

    async def one() -> bool:
        return len(server.server_state.connections) == 1

    await eventually(one, what="the connection accepted")
    (protocol,) = server.server_state.connections
    recorder = Recorder(protocol.transport)
    protocol.transport = recorder  # type: ignore[assignment]  # it has what uvicorn uses
    return recorder


def post(body: bytes) -> bytes:
    return HEAD + b"content-length: %d\r\n\r\n" % len(body) + body


async def test_a_streams_head_leaves_with_its_first_events(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    release = asyncio.Event()

    async def stream(request: Any, context: Any) -> AsyncIterator[rs.ChatStreamResponse]:
        yield route_message()
        first = rs.ChunkBatch(chunks=[chunk().chunk, chunk("Hel").chunk])  # role, first token
        yield rs.ChatStreamResponse(chunks=first)
        await release.wait()
        yield chunk("lo", finish=True)
        yield summary()

    stub.on_chat_stream = stream
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        recorder = await recorded(edge.server)
        writer.write(post(STREAM))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_S)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-type: text/event-stream" in head
        assert b"transfer-encoding: chunked" in head
        # The role chunk and the first token came in the head's own write.
        (first,) = recorder.writes
        assert first.startswith(head) and first.count(b"data: {") == 2
        assert b'"role":"assistant"' in first and b'"content":"Hel"' in first
        release.set()
        body = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), ANSWER_S)
    assert body.startswith(first[len(head) :])
    assert body.count(b"data: {") == 3 and b"data: [DONE]\n\n" in body


async def test_a_json_answer_is_one_write(start_edge: EdgeFactory, stub: StubRouter) -> None:
    async def chat(request: Any, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("Hello"), route=route())

    stub.on_chat = chat
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        recorder = await recorded(edge.server)
        writer.write(post(BODY))
        status, _, body = await response(reader)
    assert status == b"HTTP/1.1 200 OK"
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "Hello"
    assert len(recorder.writes) == 1 and recorder.writes[0].endswith(body)


async def test_an_interim_100_continue_is_not_held(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    async def chat(request: Any, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("Hello"), route=route())

    stub.on_chat = chat
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        # The client sends its body only once told to go on.
        writer.write(HEAD + b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(BODY))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_S)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(BODY)
        status, _, body = await response(reader)
    assert status == b"HTTP/1.1 200 OK"
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "Hello"


async def test_a_head_whose_body_is_not_ready_leaves_alone() -> None:
    go_on = asyncio.Event()

    async def slow_body(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await go_on.wait()  # the body comes only once the client has the head
        await send({"type": "http.response.body", "body": b"late"})

    config = uvicorn.Config(
        slow_body, port=0, http=edge_protocol(10.0, None), lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, what="uvicorn started")
    edge = Edge(server, task, server.servers[0].sockets[0].getsockname()[1])
    try:
        async with connected(edge) as (reader, writer):
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_S)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            go_on.set()
            assert await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), ANSWER_S) == (
                b"4\r\nlate\r\n0\r\n\r\n"
            )
    finally:
        server.should_exit = True
        await task
