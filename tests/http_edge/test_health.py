"""`/readyz` over several router replicas (`http_edge/_health.py`): the edge is ready while any
one of them serves, since its calls go to the ones that do; not ready when none does."""

from __future__ import annotations

import httpx
from grpc_health.v1 import health_pb2

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
    assert stub.target in reason and other.target in reason
