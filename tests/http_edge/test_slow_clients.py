"""Slow and surplus clients on a real uvicorn edge, over raw sockets: a request head that never
completes closes its connection after `edge.header_timeout_s`, a body that never completes gets
408 after `edge.body_timeout_s`, a connection beyond `edge.max_connections` gets 503.

The timeouts are configured small; each test waits for the server's answer or close, bounded
by `ANSWER_S` (far above the timeouts: what fails the test without the limits is that bound)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import orjson
import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge._slow_clients import edge_protocol
from tests.helpers import eventually
from tests.http_edge.harness import Edge, EdgeFactory, StubRouter

pytestmark = pytest.mark.timeout(30)

ANSWER_S = 5.0
SHORT_S = 0.2
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
PING = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def connected(edge: Edge) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the edge sends until it closes the connection (the test fails past ANSWER_S)."""
    return await asyncio.wait_for(reader.read(), ANSWER_S)


async def response(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One HTTP response with a content-length: status line, headers, body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_S)
    status, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {
        name.strip().lower().encode(): value.strip().encode()
        for name, _, value in (line.partition(":") for line in lines)
    }
    body = await reader.readexactly(int(headers[b"content-length"]))
    return status.encode(), headers, body


@pytest.mark.parametrize(
    "sent", [b"", b"POST /v1/chat/comp", HEAD], ids=["nothing", "half a line", "no end"]
)
async def test_a_head_that_never_completes_closes_the_connection(
    start_edge: EdgeFactory, sent: bytes
) -> None:
    edge = await start_edge(header_timeout_s=SHORT_S)
    async with connected(edge) as (reader, writer):
        writer.write(sent)
        assert await until_closed(reader) == b""  # closed, nothing answered


async def test_the_header_timeout_starts_again_after_each_response(
    start_edge: EdgeFactory,
) -> None:
    # uvicorn's keep-alive timeout stops at the first byte of the next request; this does not.
    edge = await start_edge(header_timeout_s=SHORT_S)
    async with connected(edge) as (reader, writer):
        writer.write(PING)
        status, _, body = await response(reader)
        assert status == b"HTTP/1.1 200 OK" and orjson.loads(body) == {"status": "ok"}
        writer.write(b"GET /healthz HTTP/1.1\r\nho")
        assert await until_closed(reader) == b""


async def test_a_request_slower_than_the_header_timeout_is_answered(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    released = asyncio.Event()

    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        await released.wait()  # the head is complete: its timer must not run on
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    edge = await start_edge(header_timeout_s=SHORT_S)
    async with connected(edge) as (reader, writer):
        for _ in range(2):  # and again on the connection kept alive
            released.clear()
            writer.write(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
            await writer.drain()
            # A whole header timeout passes while the request is held: a connection opened
            # after it that sends nothing is closed by its own timer, which started later.
            async with connected(edge) as (witness, _):
                assert await until_closed(witness) == b""
            released.set()
            status, _, body = await response(reader)
            assert status == b"HTTP/1.1 200 OK" and orjson.loads(body)["object"] == "list"


async def test_a_body_shorter_than_its_content_length_gets_408_and_a_close(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(body_timeout_s=SHORT_S)
    async with connected(edge) as (reader, writer):
        writer.write(HEAD + b"content-length: 1000\r\n\r\n" + b'{"model"')
        status, headers, body = await response(reader)
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert headers[b"content-type"] == b"application/json"
        assert headers[b"connection"] == b"close"
        error = orjson.loads(body)["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "request_timeout"
        assert await until_closed(reader) == b""


async def test_a_chunked_body_that_stops_gets_408(start_edge: EdgeFactory) -> None:
    edge = await start_edge(body_timeout_s=SHORT_S)
    async with connected(edge) as (reader, writer):
        writer.write(HEAD + b'transfer-encoding: chunked\r\n\r\n8\r\n{"model"\r\n')
        status, _, body = await response(reader)
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert orjson.loads(body)["error"]["code"] == "request_timeout"


async def test_a_body_answered_before_it_arrives_is_waited_for_as_a_body(
    start_edge: EdgeFactory,
) -> None:
    # A body over the limit is refused (413) as soon as its Content-Length is read; the client
    # sends it on (an SDK reads the answer once its upload is done). The header timeout
    # waits for the next request's head, not for that body: it closed the connection mid-upload
    # and the reset lost the 413 (the openai SDK said "Connection error." and retried).
    edge = await start_edge(max_body_bytes=1000, header_timeout_s=SHORT_S, body_timeout_s=60)
    body = b'{"model": "' + b"m" * 9000 + b'"}'
    async with connected(edge) as (reader, writer):
        writer.write(HEAD + b"content-length: %d\r\n\r\n" % len(body) + body[:1000])
        status, _, answer = await response(reader)
        assert status == b"HTTP/1.1 413 Request Entity Too Large"
        assert orjson.loads(answer)["error"]["code"] == "request_too_large"
        # A whole header timeout passes mid-upload: a connection opened after the 413 that
        # sends nothing is closed by its own timer, which started later.
        async with connected(edge) as (witness, _):
            assert await until_closed(witness) == b""
        writer.write(body[1000:] + PING)  # the rest of the body, then the next request
        status, _, answer = await response(reader)
        assert status == b"HTTP/1.1 200 OK" and orjson.loads(answer) == {"status": "ok"}


async def test_a_body_answered_before_it_arrives_gets_the_body_timeout(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(max_body_bytes=1000, body_timeout_s=SHORT_S)
    async with connected(edge) as (reader, writer):
        writer.write(HEAD + b"content-length: 5000\r\n\r\n" + b"x" * 1000)  # the rest never
        status, _, _ = await response(reader)
        assert status == b"HTTP/1.1 413 Request Entity Too Large"
        assert await until_closed(reader) == b""


async def test_a_head_begun_before_the_answer_gets_the_header_timeout(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    # The next request's head starts (pipelined) while the last is answered, and stops: its
    # time is the header timeout's, not the (longer) one of a body still due.
    released = asyncio.Event()

    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        await released.wait()
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    edge = await start_edge(header_timeout_s=SHORT_S, body_timeout_s=60)
    async with connected(edge) as (reader, writer):
        writer.write(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\nGET /healthz HTTP/1.1\r\nho")
        await writer.drain()
        await eventually(partial(_called, stub), within=ANSWER_S, what="the router called")
        released.set()
        assert (await response(reader))[0] == b"HTTP/1.1 200 OK"
        assert await until_closed(reader) == b""


async def _called(stub: StubRouter) -> bool:
    return bool(stub.calls)


async def test_a_connection_beyond_max_connections_gets_503_json(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(max_connections=1)
    async with connected(edge) as (first, first_writer):
        first_writer.write(PING)
        assert (await response(first))[0] == b"HTTP/1.1 200 OK"  # open, kept alive
        async with connected(edge) as (second, second_writer):
            second_writer.write(PING)
            status, headers, body = await response(second)
            assert status == b"HTTP/1.1 503 Service Unavailable"
            assert headers[b"retry-after"] == b"1"
            assert orjson.loads(body)["error"]["code"] == "server_overloaded"
            assert await until_closed(second) == b""

    async def first_gone() -> bool:
        return not edge.server.server_state.connections

    await eventually(first_gone, within=ANSWER_S, what="the edge saw the first connection go")
    async with connected(edge) as (third, third_writer):  # room again
        third_writer.write(PING)
        assert (await response(third))[0] == b"HTTP/1.1 200 OK"


async def test_a_connection_keeps_its_own_state_out_of_uvicorns_dict() -> None:
    # uvicorn's protocol keeps ~30 attributes in its `__dict__`, about as many as CPython shares
    # between instances: two more of ours there grew every connection's dict (slots instead).
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    protocol_class = edge_protocol(10.0, None)
    config = Config(app=app, http=protocol_class)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol._arm()  # the header timer, as a new connection's
    try:
        assert not {"_header_timer", "_held"} & set(vars(protocol))
    finally:
        protocol._disarm()
