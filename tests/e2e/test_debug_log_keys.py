"""A caller's key never reaches the log, even at DEBUG, where uvicorn writes each WebSocket
handshake's headers: a browser's Realtime key rides in a subprotocol
(`openai-insecure-api-key.<key>`), and a configured client key, known to the router by its hash
only, may have any shape."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from router_service.fake_upstream import FakeUpstream
from router_service.telemetry import JsonFormatter, Redactor
from router_service.telemetry._logging import REDACTOR
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client
from tests.router_service.server.test_realtime_rpc import realtime_config

KEY = "plainclientkey-0123456789abcdef"
WRONG = "wrongclientkey-0123456789abcdef"


@contextmanager
def logged(redactor: Redactor, level: int) -> Iterator[io.StringIO]:
    """Every line at `level` and above, as the router's JSON log writes it through `redactor`."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter(redactor))
    root = logging.getLogger()
    was = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(was)


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Every line at DEBUG, as `telemetry.log_level: DEBUG` writes it (JSON, redacted)."""
    with logged(Redactor(), logging.DEBUG) as written:
        yield written


async def test_a_realtime_handshakes_key_is_masked_in_debug_lines(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, debug_log: io.StringIO
) -> None:
    config = realtime_config(fake)
    config["auth"] = {"clients": [client("caller", KEY)]}
    edge = await start_edge(await start_router(config))
    url = edge.base_url.replace("http", "ws", 1) + "/v1/realtime?model=voice"

    async with connect(url, subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"]) as ws:  # type: ignore[list-item]
        await ws.close()
    with pytest.raises(InvalidStatus):
        async with connect(url, subprotocols=[f"openai-insecure-api-key.{WRONG}"]):  # type: ignore[list-item]
            pass

    lines = debug_log.getvalue()
    assert "sec-websocket-protocol" in lines.lower()  # the handshakes were written
    assert KEY not in lines and WRONG not in lines


async def test_a_key_of_any_shape_in_a_handshakes_authorization_is_masked(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, debug_log: io.StringIO
) -> None:
    """A server-side caller's key comes in `Authorization: Bearer <key>`: masked whole, whatever
    characters it holds (not only a bearer token's)."""
    odd, wrong = f"team!{KEY}", f"team!{WRONG}"
    config = realtime_config(fake)
    config["auth"] = {"clients": [client("caller", odd)]}
    edge = await start_edge(await start_router(config))
    url = edge.base_url.replace("http", "ws", 1) + "/v1/realtime?model=voice"

    async with connect(url, additional_headers={"Authorization": f"Bearer {odd}"}) as ws:
        await ws.close()
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers={"Authorization": f"Bearer {wrong}"}):
            pass

    lines = debug_log.getvalue()
    assert "< authorization: " in lines.lower()  # the handshakes were written
    assert KEY not in lines and WRONG not in lines


@pytest.mark.parametrize("name", ["token", "key", "access_token", "api_key", "client_secret"])
async def test_a_key_in_a_handshakes_query_is_masked_in_the_info_line(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, name: str
) -> None:
    """uvicorn writes each WebSocket handshake at INFO, the default level, with its query
    (`"WebSocket /v1/realtime?model=voice&token=…" 401`): a key a caller put there (as Gemini
    Live's `?key=` and `?access_token=` take it) is masked there, of whatever shape; the rest of
    the query (which model) stays."""
    config = realtime_config(fake)
    config["auth"] = {"clients": [client("caller", KEY)]}
    edge = await start_edge(await start_router(config))
    url = edge.base_url.replace("http", "ws", 1) + f"/v1/realtime?model=voice&{name}={KEY}"
    with logged(Redactor(), logging.INFO) as written:  # `telemetry.log_level`'s default
        with pytest.raises(InvalidStatus):
            async with connect(url):
                pass

    lines = written.getvalue()
    assert "/v1/realtime?model=voice&" in lines  # the handshake was written
    assert KEY not in lines


@pytest.fixture
def process_log() -> Iterator[io.StringIO]:
    """Every line at DEBUG through the process's redactor (the one the router's config feeds)."""
    with logged(REDACTOR, logging.DEBUG) as written:
        yield written


async def test_a_configured_callers_key_is_masked_wherever_a_line_quotes_it(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, process_log: io.StringIO
) -> None:
    """A caller's key given as `key:` (of no key's shape) is masked in any line that quotes it,
    not only after `Bearer `: a header a handshake echoes at DEBUG, a query the INFO line
    quotes under a name of no credential's."""
    mine = "caller!plain-0123456789abcdef"
    config = realtime_config(fake)
    config["auth"] = {"clients": [{"name": "caller", "key": mine}]}
    edge = await start_edge(await start_router(config))
    url = edge.base_url.replace("http", "ws", 1) + f"/v1/realtime?model=voice&session={mine}"

    headers = {"Authorization": f"Bearer {mine}", "X-Debug-Echo": mine}
    async with connect(url, additional_headers=headers) as ws:
        await ws.close()

    lines = process_log.getvalue()
    assert "x-debug-echo: " in lines.lower() and "session=" in lines  # the lines were written
    assert mine not in lines
