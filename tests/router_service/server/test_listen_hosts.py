"""`server.host` as uvicorn and `check_listening` take it: a bare IPv6 address (`::`, `::1`)
or none listens there, not a `ListenError` blaming a taken port (grpc read `:::50051`'s first
`:` as the port's)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.runtime import Runtime
from router_service.server import RouterServer
from tests.conftest import base_config


@pytest.mark.parametrize(
    ("host", "address", "target"),
    [
        ("::", "[::]", "[::1]"),
        ("::1", "[::1]", "[::1]"),
        ("", "[::]", "127.0.0.1"),
        ("[::1]", "[::1]", "[::1]"),
    ],
)
async def test_a_bare_ipv6_or_empty_host_is_listened_on(
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
