"""The soak's requests say what the response cache did with them (`cached:200/hit`), over HTTP
through the edge and over gRPC, unary and streamed: its outcome counts show how many answers came
from the cache. Against a real router (cache on) and edge, on loopback."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from benchmarks._soak_load import Request, _grpc_call, _http_call
from clients.switchboard.v1 import router_service_pb2_grpc
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config, fake, start_edge, start_router
from tests.e2e.stream_harness import StartEdge

__all__ = ["fake", "start_edge", "start_router"]  # the suite's fixtures, used here

pytestmark = pytest.mark.timeout(60)


def _request(stream: bool, *, bypass: bool = False, prompt: str = "again") -> Request:
    body: dict[str, Any] = {"model": "chain", "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return Request("cached", "sk-any", body, "", 10.0, bypass=bypass)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_http_outcomes_name_the_cache(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, stream: bool
) -> None:
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    edge = await start_edge(router)
    async with aiohttp.ClientSession() as session:
        first = await _http_call(session, edge.base_url, _request(stream))
        second = await _http_call(session, edge.base_url, _request(stream))
        bypassed = await _http_call(session, edge.base_url, _request(stream, bypass=True))
    assert (first, second, bypassed) == ("200/miss", "200/hit", "200/bypass")


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_grpc_outcomes_name_the_cache(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    stub = router_service_pb2_grpc.RouterServiceStub(router.channel)
    first = await _grpc_call(stub, _request(stream))
    second = await _grpc_call(stub, _request(stream))
    bypassed = await _grpc_call(stub, _request(stream, bypass=True))
    assert (first, second, bypassed) == ("OK/miss", "OK/hit", "OK/bypass")


async def test_without_the_cache_outcomes_are_as_before(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router)
    stub = router_service_pb2_grpc.RouterServiceStub(router.channel)
    async with aiohttp.ClientSession() as session:
        over_http = await _http_call(session, edge.base_url, _request(False))
    assert (over_http, await _grpc_call(stub, _request(True))) == ("200", "OK")
