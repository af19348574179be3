"""A replica that loses Redis while its own calls hold a key's slots or a provider's session
places still counts them: a key's `max_in_flight` and a provider's `max_sessions` hold per
replica during the outage (README "Running several replicas"), its calls under way included,
not only those begun after Redis went."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import openai
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import advance_until_done
from tests.http_edge.harness import Edge
from tests.replicas.harness import ask, replica_config, start_on_reply_clock
from tests.replicas.redis_fixtures import PrivateRedis
from tests.router_service.engine.test_stream_holds import RenewerClock

pytestmark = pytest.mark.timeout(30)

RETRY_S = 0.1


async def stream_under_way(
    replica: RouterHandle, fake: FakeUpstream, model: str = "a", session: str = ""
) -> Awaitable[Any]:
    """A stream on `replica` past its first chunk, held upstream until the fake's release:
    its last event, once it read them all."""
    fake.state.set_scenario(Scenario(chunks=5, held_after_chunks=2))
    request = ask(model, session)
    call = replica.stub.ChatStream(
        pb.ChatStreamRequest(params=request.params, routing=request.routing)
    )
    async for event in call:
        if event.HasField("chunk"):
            break
    fake.state.clear_scenarios()

    async def rest() -> Any:
        return [event async for event in call][-1]

    return asyncio.ensure_future(rest())


async def unary_under_way(replica: RouterHandle, fake: FakeUpstream) -> Awaitable[Any]:
    """A Chat on `replica` held upstream until the fake's release: its answer."""
    fake.state.hold()
    call: asyncio.Future[Any] = asyncio.ensure_future(replica.stub.Chat(ask()))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the call upstream")
    return call


Holder = Callable[[RouterHandle, FakeUpstream], Awaitable[Awaitable[Any]]]


@pytest.mark.parametrize("holder", [stream_under_way, unary_under_way], ids=["stream", "unary"])
async def test_a_replica_losing_redis_counts_its_own_calls_under_way_in_max_in_flight(
    holder: Holder, fake: FakeUpstream, start_router: StartRouter, private_redis: PrivateRedis
) -> None:
    config = replica_config(fake.base_url, private_redis.url, "own-leases")
    config["state"].update(retry_interval_s=RETRY_S)
    config["providers"]["alpha"].update(keys=[{"key": "k1", "max_in_flight": 1}], queue_timeout_s=0)
    clock = ManualClock(time.time())
    replica = await start_on_reply_clock(start_router, config, clock)
    under_way = await holder(replica, fake)  # k1's only slot, taken on Redis

    await private_redis.stop()
    assert await replica.leases_held(settled=False) == 1  # still its own, on its local state
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # not a second call on k1
        await replica.stub.Chat(ask())
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count(key="k1") == 1

    fake.state.release()
    await under_way
    assert await replica.leases_held() == 0  # given back here too: k1 serves again
    assert (await replica.stub.Chat(ask())).completion.choices[0].message.text == "Echo: hi"
    await replica.runtime.afterwork.drain()

    await private_redis.start()  # same port, empty
    clock.advance(RETRY_S)
    assert (await replica.stub.Chat(ask())).completion.choices[0].message.text == "Echo: hi"
    assert not replica.runtime.store.degraded  # type: ignore[attr-defined]
    assert await replica.leases_held() == 0


async def test_a_replica_losing_redis_counts_its_own_conversations_under_way_in_max_sessions(
    fake: FakeUpstream, start_router: StartRouter, private_redis: PrivateRedis
) -> None:
    config = replica_config(fake.base_url, private_redis.url, "own-marks")
    config["state"].update(retry_interval_s=RETRY_S)
    config["providers"]["alpha"].update(thread_protection="provider-ban", max_sessions=1)
    clock = ManualClock(time.time())
    replica = await start_on_reply_clock(start_router, config, clock)
    under_way = await stream_under_way(replica, fake, "chain", "s1")  # alpha's one session

    await private_redis.stop()
    moved = await replica.stub.Chat(ask("chain", "s2"))
    assert moved.route.deployment == "beta/model-b"  # alpha serves s1 still: no place for s2

    fake.state.release()
    assert (await under_way).summary.route.deployment == "alpha/model-a"
    await replica.runtime.afterwork.drain()
    assert (await replica.stub.Chat(ask("chain", "s3"))).route.deployment == "alpha/model-a"


async def test_a_replica_losing_redis_counts_its_callers_streams_under_way_through_the_edge(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    private_redis: PrivateRedis,
) -> None:
    config = replica_config(fake.base_url, private_redis.url, "own-streams")
    config["state"].update(retry_interval_s=RETRY_S)
    app = {"name": "app", "key": "sk-client-app", "max_concurrent_streams": 1}
    config["auth"] = {"clients": [app]}
    clock = ManualClock(time.time())
    replica = await start_on_reply_clock(start_router, config, clock)
    url = f"{(await start_edge(replica)).base_url}/v1"
    async with openai.AsyncOpenAI(base_url=url, api_key="sk-client-app", max_retries=0) as sdk:
        fake.state.set_scenario(Scenario(chunks=5, held_after_chunks=2))
        said: list[Any] = [{"role": "user", "content": "hi"}]
        stream = await sdk.chat.completions.create(model="a", messages=said, stream=True)
        chunks = aiter(stream)
        await anext(chunks)  # the client's one stream, its slot taken on Redis
        fake.state.clear_scenarios()

        await private_redis.stop()
        second = asyncio.ensure_future(
            sdk.chat.completions.create(model="a", messages=said, stream=True)
        )
        await advance_until_done(clock, 0.5, second, what="the second stream's wait for a slot")
        with pytest.raises(openai.RateLimitError):
            await second
        fake.state.release()
        assert [chunk async for chunk in chunks][-1].choices[0].finish_reason == "stop"


async def test_a_long_stream_renewed_on_redis_still_counts_when_the_replica_loses_it(
    fake: FakeUpstream, start_router: StartRouter, private_redis: PrivateRedis
) -> None:
    # Past three times its lease's TTL on Redis: the copy here was renewed as Redis's was.
    config = replica_config(fake.base_url, private_redis.url, "own-renewed")
    config["state"].update(retry_interval_s=RETRY_S)
    config["server"].update(lease_ttl_s=30)
    config["providers"]["alpha"].update(
        keys=[{"key": "k1", "max_in_flight": 1}], queue_timeout_s=0, timeouts={"stall_s": 3600}
    )
    clock = RenewerClock(time.time())
    replica = await start_on_reply_clock(start_router, config, clock)
    under_way = await stream_under_way(replica, fake)
    await clock.pass_periods(9, 10.0)

    await private_redis.stop()
    assert await replica.leases_held(settled=False) == 1
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # not a second call on k1
        await replica.stub.Chat(ask())
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    fake.state.release()
    assert (await under_way).HasField("summary")
    await replica.runtime.afterwork.drain()
    assert await replica.leases_held() == 0
