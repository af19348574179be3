"""`LeanTransport`'s wire handling, against real servers on loopback: chunked request bodies,
bodies delimited by the connection's end, back-pressure on a slow reader, TLS, informational
responses and HEAD. What it shares with the aiohttp transport is in test_transports.py."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from router_service.providers._lean_conn import _HIGH_WATER
from tests.pki import CA
from tests.router_service.providers.lean_harness import (
    _READ_CHUNK,
    MakeTransport,
    Peer,
    Server,
    connection_of,
    fetch,
    request,
    until,
)

pytestmark = pytest.mark.timeout(20)

# -- bodies -----------------------------------------------------------------------------------


async def test_streamed_request_body_goes_out_chunked(lean: MakeTransport) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"hello"
        yield b""  # sent as a chunk, this would end the body
        yield b"world!"

    transport = lean()
    async with Server() as server:
        response = await fetch(transport, server.url, method="POST", content=parts())
        assert response.status_code == 200
        (exchange,) = server.peers[0].requests
        assert exchange.header("transfer-encoding") == "chunked"
        assert exchange.header("content-length") is None
        assert exchange.body == b"5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"


async def test_a_body_delimited_by_the_connection_close(lean: MakeTransport) -> None:
    parts = [b"a" * 1000, b"b" * 70_000, b"c" * 10]

    async def until_close(peer: Peer) -> None:
        await peer.read_request()
        peer.writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for part in parts:
            peer.writer.write(part)
            await peer.writer.drain()

    transport = lean()
    async with Server(until_close) as server:
        response = await fetch(transport, server.url)
        assert response.content == b"".join(parts)
        assert transport.idle_connections == 0
        await until(lambda: transport.open_connections == 0)


async def _outcome_of_a_reset_mid_body(transport: httpx.AsyncBaseTransport) -> str:
    """A close-delimited body whose connection is reset after its first part."""
    go = asyncio.Event()

    async def reset_mid_body(peer: Peer) -> None:
        await peer.read_request()
        peer.writer.write(b"HTTP/1.1 200 OK\r\n\r\nfirst part")
        await go.wait()
        peer.reset()

    async with Server(reset_mid_body) as server:
        response = await transport.handle_async_request(request(server.url))
        assert isinstance(response.stream, httpx.AsyncByteStream)
        chunks = response.stream.__aiter__()
        try:
            assert await anext(chunks) == b"first part"
            go.set()
            async for _ in chunks:
                pass
        except httpx.TransportError as exc:
            return type(exc).__name__
        finally:
            await response.aclose()
        return "complete"


async def test_a_reset_inside_a_close_delimited_body_is_an_error(lean: MakeTransport) -> None:
    """The end of the connection ends such a body only when it is a close, not a reset: the
    same error as httpx's own transport, rather than a body silently cut short."""
    async with httpx.AsyncHTTPTransport() as reference:
        expected = await _outcome_of_a_reset_mid_body(reference)
    assert expected == "ReadError"
    assert await _outcome_of_a_reset_mid_body(lean()) == expected


async def test_a_slow_reader_pauses_the_socket(lean: MakeTransport) -> None:
    """A response body the consumer does not read stops being read from the socket once
    `_HIGH_WATER` bytes wait (so the server's sends stall), and reads on when consumed."""
    body = bytes(range(256)) * (32 * 1024)  # 8 MiB: more than the kernel's socket buffers
    sent = asyncio.Event()

    async def send_large(peer: Peer) -> None:
        await peer.read_request()
        peer.respond(body)
        await peer.writer.drain()
        sent.set()
        await peer.read_request()

    transport = lean()
    async with Server(send_large) as server:
        response = await transport.handle_async_request(request(server.url))
        conn = connection_of(response)
        await until(lambda: conn._paused)
        for _ in range(200):  # the loop turns: a socket still read would take in more
            await asyncio.sleep(0)
        assert conn._paused and not conn.complete and not sent.is_set()
        assert _HIGH_WATER < conn._buffered <= _HIGH_WATER + _READ_CHUNK
        digest = hashlib.sha256()
        async for chunk in response.aiter_raw():
            assert len(chunk) <= _HIGH_WATER + _READ_CHUNK
            digest.update(chunk)
        assert digest.digest() == hashlib.sha256(body).digest()
        await sent.wait()


async def test_a_connection_left_paused_reads_its_next_response(lean: MakeTransport) -> None:
    """A body that arrived whole but unread (reading paused above the high-water mark) and was
    closed leaves a reusable connection, which must read again for its next exchange."""
    first_part = _HIGH_WATER - 100
    rest = asyncio.Event()

    async def in_two_writes(peer: Peer) -> None:
        await peer.read_request()
        body = b"x" * (first_part + 200)
        peer.respond(body[:first_part], length=len(body))
        await rest.wait()
        peer.writer.write(body[first_part:])
        while await peer.read_request() is not None:
            peer.respond(b"second")

    transport = lean()
    async with Server(in_two_writes) as server:
        response = await transport.handle_async_request(request(server.url))
        conn = connection_of(response)
        await until(lambda: conn._buffered == first_part)
        rest.set()  # the last 200 bytes: above the mark, and the end of the body
        await until(lambda: conn.complete)
        assert conn._paused
        await response.aclose()  # unread, but whole: the connection is kept
        assert transport.idle_connections == 1
        second = await fetch(transport, server.url, read=2.0)
        assert second.content == b"second" and second.headers["x-conn"] == "1"


# -- TLS --------------------------------------------------------------------------------------


async def test_tls(lean: MakeTransport, tmp_path: Path) -> None:
    ca = CA(tmp_path, "lean-test-ca")
    issued = ca.issue("upstream", server=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(issued.cert, issued.key)
    server_names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    client_tls = ssl.create_default_context(cafile=str(ca.issued.cert))

    async with Server(tls=server_tls) as server:
        trusting = lean(verify=client_tls)
        url = f"https://localhost:{server.port}/"  # the certificate names localhost too
        for _ in range(2):
            response = await fetch(trusting, url)
            assert response.content == b"ok" and response.headers["x-conn"] == "1"
        assert server_names == ["localhost"]  # SNI from the URL's host; one handshake

        default = lean()  # the public trust store, which does not know this CA
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await fetch(default, server.url)
        assert default.open_connections == 0


async def test_informational_responses_are_skipped(lean: MakeTransport) -> None:
    async def early_hints(peer: Peer) -> None:
        await peer.read_request()
        peer.writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
        peer.respond(b"final", "X-Final: yes")
        assert await peer.read_request() is None

    async with Server(early_hints) as server:
        response = await fetch(lean(), server.url)
    assert (response.status_code, response.content) == (200, b"final")
    assert response.headers["x-final"] == "yes" and "link" not in response.headers


async def test_head_is_refused_not_left_waiting(lean: MakeTransport) -> None:
    with pytest.raises(httpx.LocalProtocolError, match="HEAD"):
        await fetch(lean(), "http://127.0.0.1:9/", method="HEAD")
