"""The edge's connection-level refusals (a head it cannot read, 400; too large, 431; past
`edge.max_connections`, 503) carry the CORS headers its other answers do, on a real uvicorn
edge: without them a browser page (Kobold Lite) sees a network error, not the status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.http_edge.harness import Edge, EdgeFactory
from tests.http_edge.test_slow_clients import PING, connected, response

pytestmark = pytest.mark.timeout(30)

ALLOWED = b"https://app.example"
OTHER = b"https://other.example"
CORS = (b"access-control-allow-origin", b"access-control-expose-headers", b"vary")


def _cors(headers: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {name: value for name, value in headers.items() if name in CORS}


def _ping(origin: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nhost: x\r\norigin: " + origin + b"\r\n\r\n"


def _malformed(origin: bytes) -> bytes:
    # httptools hands a header over when the next one's name ends: the Origin is known when a
    # header after it is the bad one (one it could not read is not).
    return b"GET /healthz HTTP/1.1\r\norigin: " + origin + b"\r\nhost: x\r\nx-bad\x01: 1\r\n\r\n"


def _too_large(origin: bytes) -> bytes:
    filler = b"x-filler: " + b"a" * 70_000 + b"\r\n"
    return b"GET /healthz HTTP/1.1\r\nhost: x\r\norigin: " + origin + b"\r\n" + filler + b"\r\n"


async def _answered(edge: Edge, sent: bytes) -> tuple[int, dict[bytes, bytes]]:
    async with connected(edge) as (reader, writer):
        writer.write(sent)
        status, headers, _ = await response(reader)
    return int(status.split()[1]), headers


@pytest.mark.parametrize(
    ("request_of", "status"), [(_malformed, 400), (_too_large, 431)], ids=["malformed", "431"]
)
@pytest.mark.parametrize("origins", [["https://app.example"], ["*"]], ids=["named", "any"])
async def test_a_refused_head_carries_the_cors_headers_of_an_answer(
    start_edge: EdgeFactory, request_of: Callable[[bytes], bytes], status: int, origins: list[str]
) -> None:
    edge = await start_edge(cors_origins=origins)
    answered, normal = await _answered(edge, _ping(ALLOWED))
    assert answered == 200 and normal[b"access-control-allow-origin"] in (ALLOWED, b"*")
    refused, headers = await _answered(edge, request_of(ALLOWED))
    assert refused == status
    assert _cors(headers) == _cors(normal)


@pytest.mark.parametrize("request_of", [_malformed, _too_large], ids=["malformed", "431"])
async def test_a_refusal_allows_no_other_origin(
    start_edge: EdgeFactory, request_of: Callable[[bytes], bytes]
) -> None:
    edge = await start_edge(cors_origins=["https://app.example"])
    _, normal = await _answered(edge, _ping(OTHER))
    _, headers = await _answered(edge, request_of(OTHER))
    assert b"access-control-allow-origin" not in headers
    assert _cors(headers) == _cors(normal)


async def test_a_refusal_without_cors_configured_has_none(start_edge: EdgeFactory) -> None:
    edge = await start_edge()
    _, headers = await _answered(edge, _too_large(ALLOWED))
    assert not _cors(headers)


@pytest.mark.parametrize("origin", [ALLOWED, OTHER])
async def test_a_refusal_past_max_connections_carries_the_cors_headers(
    start_edge: EdgeFactory, origin: bytes
) -> None:
    edge = await start_edge(cors_origins=["https://app.example"], max_connections=1)
    async with connected(edge) as (first, first_writer):
        first_writer.write(_ping(origin))
        status, normal, _ = await response(first)
        assert status == b"HTTP/1.1 200 OK"  # open, kept alive
        refused, headers = await _answered(edge, _ping(origin))
    assert refused == 503
    assert _cors(headers) == _cors(normal)
    assert (b"access-control-allow-origin" in headers) is (origin == ALLOWED)


async def test_a_plain_refusal_past_max_connections_has_none(start_edge: EdgeFactory) -> None:
    edge = await start_edge(cors_origins=["https://app.example"], max_connections=1)
    async with connected(edge) as (first, first_writer):
        first_writer.write(PING)
        assert (await response(first))[0] == b"HTTP/1.1 200 OK"
        refused, headers = await _answered(edge, PING)
    assert refused == 503 and not _cors(headers)


def _on(path: bytes, request: bytes) -> bytes:
    return request.replace(b"GET /healthz ", b"GET " + path + b" ", 1)


ADMIN_PATHS = [b"/admin", b"/admin/api/status?x=1", b"//admin//keys/", b"/%61dmin/keys"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
@pytest.mark.parametrize("request_of", [_malformed, _too_large], ids=["malformed", "431"])
async def test_a_refusal_on_an_admin_path_opens_it_to_no_other_origin(
    start_edge: EdgeFactory, request_of: Callable[[bytes], bytes], path: bytes
) -> None:
    """The admin routes answer no other origin (`test_admin_cors.py`): their refusals neither."""
    edge = await start_edge(cors_origins=["https://app.example"])
    _, normal = await _answered(edge, _on(path, _ping(ALLOWED)))
    refused, headers = await _answered(edge, _on(path, request_of(ALLOWED)))
    assert refused in (400, 431)
    assert not _cors(normal) and not _cors(headers)


async def test_a_refusal_past_max_connections_on_an_admin_path_has_none(
    start_edge: EdgeFactory,
) -> None:
    edge = await start_edge(cors_origins=["https://app.example"], max_connections=1)
    async with connected(edge) as (first, first_writer):
        first_writer.write(_ping(ALLOWED))
        assert (await response(first))[0] == b"HTTP/1.1 200 OK"
        refused, headers = await _answered(edge, _on(b"//admin/keys", _ping(ALLOWED)))
    assert refused == 503 and not _cors(headers)
