"""A listening host as `check_listening` takes it (a bare IPv6 address, `::`, `::1`; one in
brackets, `[::1]`) is listened on by the router, its metrics listener and the edge, not
refused with an error blaming a taken port (grpc read `:::50051`'s first `:` as the port's) or
a name (the resolver does not take `[::1]`)."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from http_edge import EdgeSettings
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer
from router_service.telemetry import PrometheusListener
from tests.conftest import base_config
from tests.http_edge.harness import start_edge, stop_edge


@pytest.mark.parametrize(
    ("host", "address", "target"),
    [
        ("::", "[::]", "[::1]"),
        ("::1", "[::1]", "[::1]"),
        ("[::1]", "[::1]", "[::1]"),
    ],
)
async def test_a_bare_or_bracketed_ipv6_host_is_listened_on(
    fake: FakeUpstream, host: str, address: str, target: str
) -> None:
    config = SwitchboardConfig.model_validate(
        base_config(fake.base_url, server={"host": host, "port": 0})
    )
    server = RouterServer(await Runtime.create(config))
    await server.start()
    try:
        assert server.address == f"{address}:{server.port}"
        async with grpc.aio.insecure_channel(f"{target}:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.shutdown(grace=0)


@pytest.mark.parametrize(
    ("host", "target"), [("[::1]", "[::1]"), ("::1", "[::1]"), ("[::]", "[::1]"), ("", "127.0.0.1")]
)
async def test_the_metrics_listener_takes_the_hosts_the_router_takes(
    host: str, target: str
) -> None:
    """`telemetry.prometheus_host` as `server.host`: `check_listening` passed a bracketed or
    empty host, which the listener then could not resolve ("Name or service not known")."""
    with PrometheusListener(host, 0, CollectorRegistry()) as listener:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://{target}:{listener.port}/metrics")
    assert response.status_code == 200


async def test_the_edge_takes_a_bracketed_ipv6_host(fake: FakeUpstream) -> None:
    """`edge.host: "[::1]"`, which `check_listening` passed: uvicorn gave it to the resolver
    as it was, and `switchboard serve` exited with "Name or service not known"."""
    edge = await start_edge(EdgeSettings(router_target="127.0.0.1:1"), host="[::1]")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://[::1]:{edge.port}/healthz")
        assert response.status_code == 200
    finally:
        await stop_edge(edge)
