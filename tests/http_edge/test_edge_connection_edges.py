"""The edge as an HTTP server, over raw loopback sockets on a real uvicorn edge: a pipelining
client's departure, the refusals' lingering and logging, and `x-request-id` on every answer."""

from __future__ import annotations

import asyncio
import logging
import ssl
from functools import partial
from typing import Any

import openai
import orjson
import pytest
from pydantic import ValidationError

from clients.switchboard.v1 import router_service_pb2 as rs
from http_edge import EdgeSettings
from tests.helpers import eventually
from tests.http_edge.harness import EdgeFactory, StubRouter, stop_edge
from tests.http_edge.test_lean_connection import connection_of
from tests.http_edge.test_slow_clients import (
    ANSWER_S,
    PING,
    SHORT_S,
    _called,
    connected,
    response,
    until_closed,
)

pytestmark = pytest.mark.timeout(30)

MODELS = b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"


async def test_a_pipelining_client_that_leaves_cancels_the_router_call(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    # The second request arrives while the first waits for the router: uvicorn stops reading
    # the connection then, and the client's end went unseen until the call was over.
    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        await asyncio.Event().wait()  # only a cancellation ends it
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    edge = await start_edge()
    async with connected(edge) as (_, writer):
        writer.write(MODELS)
        await writer.drain()
        await _eventually_called(stub)
        writer.write(PING)  # pipelined behind the call
        await writer.drain()
    await asyncio.wait_for(stub.cancelled.wait(), ANSWER_S)


async def _eventually_called(stub: StubRouter) -> None:
    await eventually(partial(_called, stub), within=ANSWER_S, what="the router called")


MALFORMED = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-bad\x01: 1\r\n\r\n"
TOO_LARGE = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: " + b"a" * 70_000 + b"\r\n\r\n"


def _has_request_id(headers: dict[bytes, bytes]) -> bool:
    return len(headers.get(b"x-request-id", b"")) == 32


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (MALFORMED, 400),
        (TOO_LARGE, 431),
    ],
    ids=["malformed", "head too large"],
)
async def test_a_connection_level_refusal_carries_a_request_id(
    start_edge: EdgeFactory, sent: bytes, status: int
) -> None:
    edge = await start_edge()
    async with connected(edge) as (reader, writer):
        writer.write(sent)
        line, headers, _ = await response(reader)
        assert line.split()[1] == b"%d" % status
        assert _has_request_id(headers)


async def test_a_refusal_over_max_connections_carries_a_request_id(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(max_connections=1)
    async with connected(edge) as (first, first_writer):
        first_writer.write(PING)
        assert (await response(first))[0] == b"HTTP/1.1 200 OK"
        async with connected(edge) as (second, second_writer):
            second_writer.write(PING)
            status, headers, _ = await response(second)
            assert status == b"HTTP/1.1 503 Service Unavailable"
            assert _has_request_id(headers)


@pytest.mark.parametrize("origin", [b"https://app.example", b"https://other.example"])
async def test_a_cors_preflight_carries_a_request_id(
    start_edge: EdgeFactory, origin: bytes
) -> None:
    edge = await start_edge(cors_origins=["https://app.example"])
    async with connected(edge) as (reader, writer):
        writer.write(
            b"OPTIONS /v1/chat/completions HTTP/1.1\r\nhost: x\r\norigin: " + origin + b"\r\n"
            b"access-control-request-method: POST\r\n\r\n"
        )
        status, headers, _ = await response(reader)
        assert status.split()[1] in (b"200", b"400")
        assert _has_request_id(headers)


@pytest.mark.parametrize(("sent", "status"), [(MALFORMED, 400), (TOO_LARGE, 431)])
async def test_a_refusal_logs_one_line_of_the_edges_own(
    start_edge: EdgeFactory, caplog: pytest.LogCaptureFixture, sent: bytes, status: int
) -> None:
    # uvicorn warned "Invalid HTTP request received." at each refusal the edge made.
    edge = await start_edge()
    with caplog.at_level(logging.DEBUG):
        async with connected(edge) as (reader, writer):
            writer.write(sent)
            assert (await response(reader))[0].split()[1] == b"%d" % status
            assert await until_closed(reader) == b""
    uvicorns = [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert not [r for r in uvicorns if r.levelno >= logging.WARNING]
    (refused,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused.name == "http_edge" and str(status) in refused.getMessage()


async def test_the_head_limit_is_an_edge_setting(start_edge: EdgeFactory) -> None:
    edge = await start_edge(max_head_bytes=2048)
    async with connected(edge) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: " + b"a" * 3000 + b"\r\n\r\n")
        status, _, body = await response(reader)
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
        assert "2048 bytes" in orjson.loads(body)["error"]["message"]


async def test_the_pipeline_depth_is_an_edge_setting(
    start_edge: EdgeFactory, stub: StubRouter
) -> None:
    released = asyncio.Event()

    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        await released.wait()
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    edge = await start_edge(max_pipelined=2)
    async with connected(edge) as (reader, writer):
        writer.write(MODELS)
        await writer.drain()
        await _eventually_called(stub)
        writer.write(PING * 10)
        await writer.drain()

        async def read_ahead() -> bool:
            return len(connection_of(edge).pipeline) >= 2

        await eventually(read_ahead, within=ANSWER_S, what="the pipelined requests read")
        released.set()
        answers = (await until_closed(reader)).split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 1 + 2
    assert b"connection: close" in answers[-1]


@pytest.mark.parametrize(("name", "least"), [("max_head_bytes", 1024), ("max_pipelined", 1)])
def test_the_connection_limits_are_validated(name: str, least: int) -> None:
    assert getattr(EdgeSettings.model_validate({name: least}), name) == least
    with pytest.raises(ValidationError, match=name):
        EdgeSettings.model_validate({name: least - 1})


UPLOAD = 2_000_000
POST = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"


async def _send_then_read(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> bytes:
    """An SDK's order: the whole body sent, then the answer read (a reset loses it)."""
    writer.write(b"x" * UPLOAD)
    await writer.drain()
    return (await response(reader))[0]


async def test_a_refusal_over_max_connections_survives_the_upload_sent_on(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(max_connections=1)
    async with connected(edge) as (first, first_writer):
        first_writer.write(PING)
        assert (await response(first))[0] == b"HTTP/1.1 200 OK"
        async with connected(edge) as (second, second_writer):
            second_writer.write(POST + b"content-length: %d\r\n\r\n" % UPLOAD)
            await second_writer.drain()
            assert await _send_then_read(second_writer, second) == (
                b"HTTP/1.1 503 Service Unavailable"
            )


async def test_a_body_timeout_survives_the_rest_of_the_body_sent_late(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(body_timeout_s=0.2)
    async with connected(edge) as (reader, writer):
        writer.write(POST + b"content-length: %d\r\n\r\n" % (UPLOAD + 1) + b"{")
        await writer.drain()

        async def answered() -> bool:  # the 408 sent (uvicorn counts a request once answered)
            return edge.server.server_state.total_requests == 1

        await eventually(answered, within=ANSWER_S, what="the 408 sent")
        assert await _send_then_read(writer, reader) == b"HTTP/1.1 408 Request Timeout"


async def test_a_malformed_head_past_the_limit_is_answered_once(
    start_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # The read that brought a head past `max_head_bytes` (and one read more) also broke it: the
    # parser's 400 went out, then the size check answered 431 on the connection it had ended
    # (write after write_eof: asyncio's "Fatal error: protocol.data_received() call failed").
    edge = await start_edge(max_head_bytes=1024)
    begun = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: " + b"a" * 262_000
    with caplog.at_level(logging.DEBUG):
        async with connected(edge) as (reader, writer):
            writer.write(begun)
            await writer.drain()

            async def read_whole() -> bool:
                return connection_of(edge)._head_bytes == len(begun)

            await eventually(read_whole, within=ANSWER_S, what="the head's start read")
            writer.write(b"a" * 2000 + b"\r\nx-bad\x01: 1\r\n\r\n")
            answers = (await until_closed(reader)).split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 1 and answers[0].startswith(b"400 ")
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01"], ids=["nothing", "a hello begun"])
async def test_a_tls_handshake_not_finished_is_bounded_by_the_header_timeout(
    start_edge: EdgeFactory, pki: dict[str, Any], sent: bytes
) -> None:
    # asyncio's and uvloop's own bound on a handshake is 60 s: a connection holding its file
    # descriptor six times as long as a plain one that sends no head.
    tls = {"cert_file": str(pki["server"].cert), "key_file": str(pki["server"].key)}
    edge = await start_edge(header_timeout_s=SHORT_S, tls=tls)
    async with connected(edge) as (reader, writer):
        writer.write(sent)
        assert await until_closed(reader) == b""


async def test_a_tls_stop_does_not_wait_for_an_idle_client_that_reads_nothing(
    start_edge: EdgeFactory, stub: StubRouter, pki: dict[str, Any]
) -> None:
    # A synchronous SDK keeps its connection in a pool and reads nothing from it until its next
    # call: over TLS the edge's close at a stop waited for that client's close_notify (asyncio's
    # 30 s), and the stop waited for the close: SHUTDOWN_GRACE_S, then "timeout graceful
    # shutdown exceeded" logged as an ERROR (past a pod's 30 s grace: a SIGKILL instead).
    tls = {"cert_file": str(pki["server"].cert), "key_file": str(pki["server"].key)}

    async def on_list_models(request: object, context: object) -> rs.ListModelsResponse:
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    edge = await start_edge(tls=tls)
    trust = ssl.create_default_context(cafile=str(pki["ca"].issued.cert))
    http = openai.DefaultHttpxClient(verify=trust, timeout=ANSWER_S)
    url = f"https://127.0.0.1:{edge.port}/v1"
    sdk = openai.OpenAI(base_url=url, api_key="sk-any", max_retries=0, http_client=http)
    try:
        listed = await asyncio.to_thread(sdk.models.list)  # its connection, idle, in the pool
        assert listed.data == []
        await asyncio.wait_for(stop_edge(edge), ANSWER_S)
    finally:
        await asyncio.to_thread(http.close)
