"""Routing statistics during a rolling upgrade: replicas of the version that numbered its buckets
(`floor(now / bucket_s)`, before buckets were named by their start second) share the Redis
store with this version's. Neither reads the other's buckets as fresh."""

from __future__ import annotations

import math

import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.replicas.redis_fixtures import redis_prefix, redis_state, redis_url
from tests.router_service.server.processes import params

__all__ = ["redis_prefix", "redis_url"]  # fixtures: the shared store is Redis

pytestmark = pytest.mark.timeout(20)
WIDTH, WINDOW = 600.0, 7 * 86400.0  # the defaults, on both versions
ALPHA = "stats:alpha/model-a"


def _weight_as_numbered(bucket: int, now: float) -> float:
    """How the numbering version weighs a bucket (its `RoutingStats.read`): by its number."""
    age = max(0.0, now - (bucket + 0.5) * WIDTH)
    return max(0.0, 1.0 - age / WINDOW)


async def _router(
    start_router: StartRouter, fake: FakeUpstream, state: dict[str, object]
) -> RouterHandle:
    config = base_config(fake.base_url, routing={"stats_flush_s": 0}, state=state)
    return await start_router(config, clock=ManualClock())


async def test_an_older_replica_reads_this_versions_buckets_as_long_past(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """A start second read as a bucket number lay ages ahead: the numbering replicas counted
    this version's results at full weight until they expired (a week), a deployment's failures
    of last week as this minute's."""
    router = await _router(start_router, fake, redis_state(redis_url, redis_prefix))
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    await router.stub.Chat(pb.ChatRequest(params=params("chain")))  # alpha fails, beta answers
    store, now = router.runtime.store, router.runtime.clock.now()

    (buckets,) = await store.read_buckets([ALPHA])

    assert [fields for fields in buckets.values()] == [{"f": 1.0}]  # written, to Redis
    assert [_weight_as_numbered(bucket, now) for bucket in buckets] == [0.0]


async def test_this_version_reads_its_own_and_ignores_an_older_replicas_buckets(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    router = await _router(start_router, fake, redis_state(redis_url, redis_prefix))
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    await router.stub.Chat(pb.ChatRequest(params=params("chain")))
    store, now = router.runtime.store, router.runtime.clock.now()
    numbered = math.floor(now / WIDTH)  # an older replica's failure, this minute
    await store.add_to_bucket(ALPHA, numbered, {"f": 5.0}, WINDOW + WIDTH)

    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())

    alpha = next(d for d in stats.deployments if d.deployment == "alpha/model-a")
    assert (alpha.failures, alpha.beta) == (1, pytest.approx(0.1 + 1.0))
