"""A caller leaving `/v1/realtime` while the router's upstream handshake is under way: the edge
ends the router's call and keeps no native memory of it (clients/_cancelling.py).

The edge used to cancel the task reading the router's first message (a pending grpc.aio read),
which leaks what gRPC's C core allocated for that read; it now interrupts the session and lets
the read end by itself. Raw WebSocket upgrades over loopback to a real uvicorn, cut by closing
the socket; native bytes per cut opening over many (the stub router's share, in this process,
included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import router_service_pb2_grpc as rs_grpc
from http_edge import EdgeSettings
from tests.helpers import serve_grpc
from tests.http_edge.harness import Edge, StubRouter, start_edge, stop_edge
from tests.native_memory import malloc_in_use

pytestmark = pytest.mark.timeout(240)  # a hang guard: ~3-7 s alone

OPENINGS = 900
ROUNDS = 3
WARM_UP = 150
BOUND = 40  # native bytes per cut opening; measured: <= 0 with the fix, ~100-130 without it
_UPGRADE = (
    b"GET /v1/realtime?model=voice HTTP/1.1\r\nhost: edge\r\nupgrade: websocket\r\n"
    b"connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"sec-websocket-version: 13\r\nauthorization: Bearer sk-caller\r\n\r\n"
)


class _HandshakingRouter(StubRouter):
    """A router whose upstream handshake never ends: only the caller leaving ends a session. Its
    headers come first, as the router's (router_service/server/_realtime.py): the edge's read of
    the route is then one gRPC's core frees when the call is interrupted."""

    def __init__(self, headers: bool = True) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.headers = headers

    async def Realtime(
        self, request_iterator: AsyncIterator[rs.RealtimeRequest], context: Any
    ) -> AsyncIterator[rs.RealtimeResponse]:
        try:
            await anext(request_iterator)  # the open
            if self.headers:
                await context.send_initial_metadata(())  # as the router does, before the upstream's
            self.entered.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        yield rs.RealtimeResponse()  # pragma: no cover


async def _cut(edge: Edge, router: _HandshakingRouter) -> None:
    """One opening cut while the edge waits on the router; returns once the router saw it end."""
    router.entered.clear()
    router.cancelled.clear()
    _, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(_UPGRADE)
    async with asyncio.timeout(15):
        await router.entered.wait()  # the edge waits for the router's first message
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(15):
        await router.cancelled.wait()  # the router call was cancelled


@pytest.fixture
def uvicorn_quiet() -> Iterator[None]:
    """uvicorn's INFO lines kept out of pytest's log capture (which holds every record)."""
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.asynccontextmanager
async def _edge_before(router: _HandshakingRouter) -> AsyncIterator[Edge]:
    """The real edge (uvicorn on loopback) in front of `router` (a grpc.aio server)."""
    async with serve_grpc(
        (rs_grpc.add_RouterServiceServicer_to_server, router),
        (health_pb2_grpc.add_HealthServicer_to_server, router.health),
    ) as target:
        await router.health.set("", health_pb2.HealthCheckResponse.SERVING)
        edge = await start_edge(EdgeSettings(router_target=target), None)
        try:
            yield edge
        finally:
            await stop_edge(edge)


async def test_a_caller_leaving_during_the_handshake_costs_no_native_memory(
    uvicorn_quiet: None,
) -> None:
    router = _HandshakingRouter()
    async with _edge_before(router) as edge:
        for _ in range(WARM_UP):
            await _cut(edge, router)
        # The least of a few rounds: a leak shows in every round, a one-off allocation of
        # something else in this process in one.
        rounds = []
        for _ in range(ROUNDS):
            before = malloc_in_use()
            for _ in range(OPENINGS // ROUNDS):
                await _cut(edge, router)
            rounds.append((malloc_in_use() - before) / (OPENINGS // ROUNDS))
    assert min(rounds) < BOUND, f"{rounds} native bytes kept per cut opening, by round"


async def test_a_caller_leaving_before_the_routers_headers_still_ends_its_call(
    uvicorn_quiet: None,
) -> None:
    """The edge waits for the router's headers before ending the call (that frees the read), but
    not for headers that never come: a router sending none still sees the call end."""
    router = _HandshakingRouter(headers=False)
    async with _edge_before(router) as edge:
        await _cut(edge, router)  # raises TimeoutError when the router's call is never ended
    assert router.cancelled.is_set()
