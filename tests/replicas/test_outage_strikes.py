"""A key's hint-less 429 strikes, counted in Redis for every replica, when Redis becomes
unreachable: the replica counts on from what it knew, as it keeps the cooldowns it knew."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.replicas.harness import ask
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_lost_replies import StartPair, start_pair
from tests.replicas.test_outage_writes import as_is

__all__ = ["start_pair"]  # the fixture, shared


async def kb_backoff(replica: RouterHandle) -> float:
    """kb's 429 without a Retry-After on `replica`, then how long a call is told kb cools."""
    with pytest.raises(grpc.aio.AioRpcError):
        await replica.stub.Chat(ask("beta/model-b"))  # the 429
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await replica.stub.Chat(ask("beta/model-b"))  # refused: kb cools this long
    wait = details_from_rpc_error(caught.value).retry_after_s
    assert wait is not None
    return wait


async def test_a_replica_that_loses_redis_backs_a_key_off_from_the_strikes_it_knew(
    start_pair: StartPair, redis_proxy: RedisProxy, fake: FakeUpstream
) -> None:
    """kb met two 429s without a hint on A (counted in Redis), each once its backoff was
    over; then A loses Redis. Its third is the third strike (10 to 30 s from the 5 s base),
    not a first one (2.5 to 7.5 s): an outage does not start a key's backoff over, as before
    strikes were shared it did not."""
    a, _, clock = await start_pair(as_is)
    fake.state.set_scenario(Scenario.rate_limited(retry_after=None), model="model-b")
    for _ in range(2):
        clock.advance(await kb_backoff(a) + 0.01)
    await redis_proxy.cut()

    wait = await kb_backoff(a)

    assert a.runtime.store.outage_counts()["degraded"]
    assert fake.state.count(model="model-b") == 3
    assert 10.0 <= wait < 30.0, wait
