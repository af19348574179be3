"""`/readyz` over several router replicas (`http_edge/_health.py`): the edge is ready while any
one of them serves, since its calls go to the ones that do; not ready when none does."""

from __future__ import annotations

import logging

import httpx
import pytest
from grpc_health.v1 import health_pb2

from http_edge._health import RouterHealth
from tests.clients.test_reconnect import LONGEST_GAP_S, longest_gap, refusing_router
from tests.helpers import free_port
from tests.http_edge.harness import EdgeFactory, StubRouter, serve_stub_router

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


async def test_ready_while_one_of_several_routers_serves(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    async with serve_stub_router() as other:
        edge = await start_edge(router_target=[stub.target, other.target])
        async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
            for stopping in (stub, other):  # either one stopping
                await stopping.health.set("", NOT_SERVING)
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                await stopping.health.set("", SERVING)
            await stub.health.set("", NOT_SERVING)
            await other.health.set("", NOT_SERVING)
            none = await http.get("/readyz")
    assert none.status_code == 503
    reason = none.json()["reason"]
    assert reason.count("router is not serving (NOT_SERVING)") == 2
    assert reason.startswith("router 1: ") and "; router 2: " in reason


async def test_readyz_finds_a_router_back_within_seconds_of_its_return() -> None:
    """The probe's channel holds to the clients' reconnect backoff (tests/clients/
    test_reconnect.py): unbounded, `/readyz` said 503 for ~15 s after a router down a minute
    was back, up to 2 minutes after a longer outage."""
    async with refusing_router() as (target, attempts):
        health = RouterHealth(target)
        try:
            assert await longest_gap(attempts, lambda: health.check(1.0)) <= LONGEST_GAP_S
        finally:
            await health.aclose()


async def test_readyz_tells_the_internet_no_router_address_nor_grpc_detail(
    stub: StubRouter, start_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """`/readyz` answers anyone who reaches the edge: its 503 says which router (by its place in
    `edge.router_target`) and the gRPC status, never the routers' addresses nor gRPC's error text
    (addresses, resolver and TLS detail), which the edge's log holds for its operator."""
    gone = f"127.0.0.1:{free_port()}"
    edge = await start_edge(router_target=[stub.target, gone])
    await stub.health.set("", NOT_SERVING)
    with caplog.at_level(logging.WARNING, logger="switchboard.edge"):
        async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
            none = await http.get("/readyz")
    assert none.status_code == 503
    body = none.text
    assert stub.target not in body and gone not in body and "127.0.0.1" not in body
    reason = none.json()["reason"]
    assert "router 1: router is not serving (NOT_SERVING)" in reason
    assert "router 2: router health check failed: UNAVAILABLE" in reason
    assert none.json()["error"]["message"] == reason
    assert gone in caplog.text  # the operator's log says which and why
