"""Through the edge with the openai SDK: a stream sharing an identical stream's flight (the
response cache) whose own deadline (the edge's request timeout) passes before its first chunk is
a 504 in OpenAI's shape, however long the first stream runs; that one goes on."""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.http_edge.test_admin import StartEdge, start_edge  # noqa: F401 (the fixture)
from tests.router_service.auth.helpers import chat_stream
from tests.router_service.cache.test_stream_flights import events, flying, statuses

pytestmark = pytest.mark.timeout(30)
HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


async def test_a_stream_follower_through_the_edge_is_a_504_at_its_deadline(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,  # noqa: F811
) -> None:
    clock = ManualClock()
    config = base_config(fake.base_url, cache={"enabled": True})
    for provider in config["providers"].values():  # the leader's stream outlasts the follower
        provider["timeouts"] = {"first_chunk_s": 1000, "total_s": 1000, "stall_s": 1000}
    router = await start_router(config, clock=clock)
    edge = await start_edge(router, request_timeout_s=60)
    fake.state.hold()
    leader = asyncio.create_task(events(router, chat_stream()))  # gRPC, no deadline
    flight = await flying(router, fake)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-x", max_retries=0, timeout=20
    ) as sdk:
        follower = asyncio.create_task(
            sdk.chat.completions.create(model="chain", messages=HI, stream=True)
        )
        await flight.wait_until(lambda f: f.followers == 1)
        clock.advance(61)  # past the follower's deadline (on the router's clock)
        with pytest.raises(openai.InternalServerError) as late:
            await asyncio.wait_for(follower, 10)
    assert late.value.status_code == 504
    assert late.value.code == "deadline_exceeded"
    fake.state.release()
    assert statuses(await leader) == (MISS, MISS)  # the shared stream went on, and was kept
    assert statuses(await events(router, chat_stream())) == (HIT, HIT)
    assert len(fake.state.calls()) == 1
    assert router.runtime.cache.stream_flights.open == 0
