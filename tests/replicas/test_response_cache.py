"""The response cache on Redis: an answer kept by one replica is served by another (documents
under `{prefix}:doc:cache:`), expires with its TTL there too, and the per-client byte quota is
shared by the replicas."""

from __future__ import annotations

from clients.switchboard.v1 import admin_service_pb2, routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.harness import ask, redis_store, replica_config, two_replicas
from tests.replicas.redis_fixtures import keys_under
from tests.router_service.cache.helpers import entry_bytes


async def test_an_answer_kept_by_one_replica_is_served_by_another(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock(1_000_000.0)
    config = replica_config(
        fake.base_url, redis_url, redis_prefix, cache={"enabled": True, "ttl_s": 30}
    )
    one, two = await two_replicas(start_router, config, clock)
    first = await one.stub.Chat(ask())
    await one.runtime.afterwork.drain()  # on Redis it is kept after the answer left
    assert [k for k in keys_under(redis_url, redis_prefix) if ":doc:cache:" in k]
    clock.advance(10)
    second = await two.stub.Chat(ask())
    assert second.route.cache == routing_pb2.CACHE_STATUS_HIT
    assert second.route.cache_age_s == 10
    assert second.completion == first.completion
    assert len(fake.state.calls()) == 1
    clock.advance(21)  # past its TTL, judged by the store's clock
    assert (await two.stub.Chat(ask())).route.cache == routing_pb2.CACHE_STATUS_MISS
    assert len(fake.state.calls()) == 2


async def test_the_byte_quota_is_shared_by_the_replicas(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    # What one kept answer costs, measured on a router of its own (memory state).
    measure = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    await measure.stub.Chat(ask("alpha/model-a", text="one"))
    size = await entry_bytes(measure, ask("alpha/model-a", text="one"))
    config = replica_config(
        fake.base_url,
        redis_url,
        redis_prefix,
        cache={"enabled": True, "client_bytes": size + size // 2},
    )
    one, two = await two_replicas(start_router, config)
    await one.stub.Chat(ask("alpha/model-a", text="one"))
    await one.runtime.afterwork.drain()
    await two.stub.Chat(ask("alpha/model-a", text="two"))  # over what one replica already took
    await two.runtime.afterwork.drain()
    assert len([k for k in keys_under(redis_url, redis_prefix) if ":doc:cache:" in k]) == 1
    hit, miss = [
        (await replica.stub.Chat(ask("alpha/model-a", text=text))).route.cache
        for replica, text in ((two, "one"), (one, "two"))
    ]
    assert (hit, miss) == (routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS)


async def test_a_purge_through_one_replica_is_seen_by_the_other(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix, cache={"enabled": True})
    one, two = await two_replicas(start_router, config)
    await one.stub.Chat(ask())
    await one.runtime.afterwork.drain()
    assert (await two.stub.Chat(ask())).route.cache == routing_pb2.CACHE_STATUS_HIT
    cache = redis_store(two).cache
    assert cache is not None
    seen = cache.invalidations
    await one.admin.PurgeCache(admin_service_pb2.PurgeCacheRequest(model="a"))

    # The other replica's read cache learns of the new generation from Redis's invalidation
    # (a message pushed on its subscriber connection): wait for that.
    async def invalidated() -> bool:
        return cache.invalidations > seen

    await eventually(invalidated, what="Redis's invalidation of the generation")
    assert (await two.stub.Chat(ask())).route.cache == routing_pb2.CACHE_STATUS_MISS
