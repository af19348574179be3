"""Request heads past the edge's limit (`_slow_clients.MAX_HEAD_BYTES`), over raw sockets on a
real uvicorn edge: a 431 in OpenAI's error JSON and a close, whether the head comes whole or
never ends. uvicorn and httptools bound neither: a client could send a gigabyte of headers
within `edge.header_timeout_s`, all of it held in memory."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from http_edge._slow_clients import MAX_HEAD_BYTES, EdgeHttpProtocol
from tests.helpers import eventually
from tests.http_edge.harness import Edge, EdgeFactory
from tests.http_edge.test_slow_clients import PING, connected, response, until_closed

pytestmark = pytest.mark.timeout(30)

START = b"GET /healthz HTTP/1.1\r\nhost: x\r\n"


def header(size: int, name: bytes = b"x-filler") -> bytes:
    return name + b": " + b"a" * size + b"\r\n"


async def refused_431(reader: asyncio.StreamReader) -> None:
    status, headers, body = await response(reader)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"connection"] == b"close"
    error = orjson.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "header_too_large"
    assert str(MAX_HEAD_BYTES) in error["message"]
    assert await until_closed(reader) == b""


@pytest.mark.parametrize(
    "headers",
    [
        header(MAX_HEAD_BYTES),
        b"".join(header(1000, b"x-%d" % i) for i in range(MAX_HEAD_BYTES // 1000 + 1)),
    ],
    ids=["one large header", "many headers"],
)
async def test_a_head_over_the_limit_is_431(start_edge: EdgeFactory, headers: bytes) -> None:
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        writer.write(START + headers + b"\r\n")
        await refused_431(reader)


async def test_a_head_that_grows_without_end_is_431_before_it_ends(
    start_edge: EdgeFactory,
) -> None:
    # 16 MiB of one header, never ended: refused while it arrives, not held whole.
    edge = await start_edge(header_timeout_s=60)  # far past the test's: not what answers
    async with connected(edge) as (reader, writer):
        writer.write(START + b"x-filler: ")
        sending = asyncio.create_task(_send_forever(writer))
        try:
            await refused_431(reader)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)


async def _send_forever(writer: asyncio.StreamWriter) -> None:
    for _ in range(256):
        writer.write(b"a" * 65536)
        await writer.drain()


async def test_a_head_under_the_limit_is_served_and_kept_alive(start_edge: EdgeFactory) -> None:
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        writer.write(START + header(MAX_HEAD_BYTES // 2) + b"\r\n")
        status, _, body = await response(reader)
        assert status == b"HTTP/1.1 200 OK" and orjson.loads(body) == {"status": "ok"}
        writer.write(PING)  # the same connection serves on
        assert (await response(reader))[0] == b"HTTP/1.1 200 OK"


async def test_a_pipelined_head_after_a_long_head_and_body_is_not_431(
    start_edge: EdgeFactory,
) -> None:
    # The reads are handed to the edge's connection as the kernel could hand them (a socket
    # cannot choose them): a head begun at the end of one read, its body and the next request's
    # head begun in the next. The next head was counted with the reads of the head before: a
    # small head, pipelined behind an upload, got 431 and the connection was cut.
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        connection = await _connection(edge)
        first = b"content-length: 150000\r\n\r\n" + b"x" * 150_000
        connection.data_received(START + first + START)  # the next head begins
        assert (await response(reader))[0] == b"HTTP/1.1 200 OK"
        second = b"content-length: 200000\r\n\r\n" + b"y" * 200_000
        connection.data_received(second + START)  # it ends, its body, the next head begins
        connection.data_received(b"\r\n")  # that head ends
        assert (await response(reader))[0] == b"HTTP/1.1 200 OK"
        assert (await response(reader))[0] == b"HTTP/1.1 200 OK"
        writer.write(PING)  # the connection serves on
        assert (await response(reader))[0] == b"HTTP/1.1 200 OK"


async def _connection(edge: Edge) -> EdgeHttpProtocol:
    async def accepted() -> bool:
        return len(edge.server.server_state.connections) == 1

    await eventually(accepted, what="the connection accepted")
    (connection,) = edge.server.server_state.connections
    assert isinstance(connection, EdgeHttpProtocol)
    return connection
