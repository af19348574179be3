"""The Redis store's read cache: a deadline or value read once is then read from memory, until
Redis reports a write (by any replica); this replica's own writes are seen at once; a read that
an invalidation overtook is not kept; a lost subscriber drops everything; a server that refuses
tracking is read as before. All against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis

from router_service.clock import ManualClock
from router_service.state import RedisStateStore
from router_service.state._tracking import ReadCache
from tests.helpers import eventually
from tests.replicas.redis_fixtures import PrivateRedis


def mgets(url: str) -> int:
    """MGETs the server has run so far (`INFO commandstats`)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return int(stats.get("cmdstat_mget", {}).get("calls", 0))


@dataclass
class Replicas:
    cached: RedisStateStore  # with the read cache
    other: RedisStateStore  # without: its reads always reach Redis
    clock: ManualClock


@pytest.fixture
async def stores(redis_url: str, redis_prefix: str) -> AsyncIterator[Replicas]:
    """Two replicas on one Redis and one clock."""
    clock = ManualClock()
    cached = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    other = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock, read_cache=False)
    try:
        yield Replicas(cached, other, clock)
    finally:
        await cached.aclose()
        await other.aclose()


def cache_of(store: RedisStateStore) -> ReadCache:
    assert store.cache is not None
    return store.cache


async def invalidated(cache: ReadCache, seen: int) -> None:
    async def more() -> bool:
        return cache.invalidations > seen

    await eventually(more, what="an invalidation from Redis")


async def another_replicas_write_is_reported(stores: Replicas) -> None:
    """`other` extends `cool:a`; once Redis's invalidation has come, `cached` reads the change."""
    cache = cache_of(stores.cached)
    seen = cache.invalidations
    until = stores.clock.now() + 5
    await stores.other.extend_deadline("cool:a", until)
    await invalidated(cache, seen)
    assert await stores.cached.deadlines(["cool:a"]) == [until]


async def test_a_key_read_once_is_then_read_from_memory(stores: Replicas, redis_url: str) -> None:
    cached, other, clock = stores.cached, stores.other, stores.clock
    await other.extend_deadline("cool:a", clock.now() + 5)
    await other.set_value("sticky:s", "alpha/m", 600)

    first = await cached.read(deadlines=["cool:a", "cool:b"], values=["sticky:s"])
    before = mgets(redis_url)
    again = await cached.read(deadlines=["cool:a", "cool:b"], values=["sticky:s"])

    assert again == first
    assert first.deadlines == [clock.now() + 5, 0.0] and first.values == ["alpha/m"]
    assert mgets(redis_url) == before  # nothing was asked of Redis
    # In force or not is decided at each read: time alone never makes an entry wrong.
    clock.advance(6)
    assert await cached.deadlines(["cool:a"]) == [0.0]
    assert mgets(redis_url) == before
    # And no entry is used longer than its maximum age (10 s), whatever Redis (did not) report.
    clock.advance(5)
    assert await cached.deadlines(["cool:a"]) == [0.0]
    assert mgets(redis_url) == before + 1
    assert await cached.deadlines(["cool:a"]) == [0.0]  # read again just now: from memory
    assert mgets(redis_url) == before + 1


async def test_another_replicas_write_is_read_once_redis_reports_it(
    stores: Replicas,
) -> None:
    cached, other, clock = stores.cached, stores.other, stores.clock
    cache = cache_of(cached)
    assert await cached.deadlines(["cool:a"]) == [0.0]
    assert await cached.get_values(["sticky:s"]) == [None]
    seen = cache.invalidations

    await other.extend_deadline("cool:a", clock.now() + 30)
    await invalidated(cache, seen)
    assert await cached.deadlines(["cool:a"]) == [clock.now() + 30]

    seen = cache.invalidations
    await other.set_value("sticky:s", "beta/m", 600)
    await invalidated(cache, seen)
    assert await cached.get_values(["sticky:s"]) == ["beta/m"]

    seen = cache.invalidations
    await other.clear_deadline("cool:a")
    await invalidated(cache, seen)
    assert await cached.deadlines(["cool:a"]) == [0.0]


async def test_this_replicas_own_writes_are_read_at_once(
    stores: Replicas,
) -> None:
    cached, clock = stores.cached, stores.clock
    assert await cached.deadlines(["cool:a"]) == [0.0]
    assert await cached.get_values(["sticky:s"]) == [None]
    # Redis's invalidations are held back (they travel on another connection and may come
    # after the write's own reply): the writer must not need them.
    subscriber = cache_of(cached)._subscriber
    assert subscriber is not None and subscriber._transport is not None
    subscriber._transport.pause_reading()

    await cached.extend_deadline("cool:a", clock.now() + 30)
    assert await cached.deadlines(["cool:a"]) == [clock.now() + 30]
    await cached.set_value("sticky:s", "alpha/m", 600)
    assert await cached.get_values(["sticky:s"]) == ["alpha/m"]
    await cached.clear_deadline("cool:a")
    assert await cached.deadlines(["cool:a"]) == [0.0]


async def test_a_read_overtaken_by_its_keys_invalidation_is_not_kept(
    stores: Replicas, redis_url: str, redis_prefix: str
) -> None:
    cached = stores.cached
    cache = cache_of(cached)
    await cached.deadlines(["warm"])  # the subscriber and tracking are up
    key = f"{redis_prefix}:dl:cool:a"

    reading = asyncio.create_task(cached.deadlines(["cool:a"]))
    await asyncio.sleep(0)  # the read is sent; its reply cannot have been read yet
    # What Redis pushes when another replica writes the key before this reply comes back.
    cache._message(["message", "__redis__:invalidate", [key]])
    assert await reading == [0.0]

    before = mgets(redis_url)
    await cached.deadlines(["cool:a"])
    assert mgets(redis_url) == before + 1  # not kept: read from Redis again


async def test_a_lost_subscriber_drops_everything_and_tracking_comes_back(
    stores: Replicas, redis_url: str
) -> None:
    cached = stores.cached
    cache = cache_of(cached)
    await cached.deadlines(["cool:a"])
    subscriber_id = await cache._subscribed()
    assert subscriber_id is not None

    killer = redis.Redis.from_url(redis_url)
    try:
        killer.client_kill_filter(_id=str(subscriber_id))
    finally:
        killer.close()

    async def dropped() -> bool:
        return cache.cached([f"{cached.prefix}:dl:cool:a"]) is None

    await eventually(dropped, what="the cache emptied after its subscriber was lost")
    # The next read subscribes again and points the connection's tracking at the new subscriber:
    # another replica's write is reported as before.
    assert await cached.deadlines(["cool:a"]) == [0.0]
    assert await cache._subscribed() != subscriber_id
    await another_replicas_write_is_reported(stores)


@pytest.mark.parametrize("missing", ["CLIENT", "SUBSCRIBE"])
async def test_a_server_that_refuses_tracking_is_read_as_before(
    missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No CLIENT (tracking) or no SUBSCRIBE (its invalidations would never arrive)."""
    server = PrivateRedis(args=("--rename-command", missing, ""))
    await server.start()
    store = RedisStateStore.from_url(server.url, prefix="t")
    other = RedisStateStore.from_url(server.url, prefix="t", read_cache=False)
    try:
        await other.set_value("sticky:s", "alpha/m", 600)
        assert await store.get_values(["sticky:s"]) == ["alpha/m"]
        await other.set_value("sticky:s", "beta/m", 600)
        # Nothing was cached, so the next read sees the write without any invalidation.
        assert await store.get_values(["sticky:s"]) == ["beta/m"]
        assert not cache_of(store).enabled
        assert "redis refused key tracking" in caplog.text
    finally:
        await store.aclose()
        await other.aclose()
        await server.stop()


async def test_a_subscriber_gone_before_tracking_points_at_it_is_made_again(
    stores: Replicas, redis_url: str
) -> None:
    cached = stores.cached
    cache = cache_of(cached)
    await cached.deadlines(["cool:a"])
    # The race staged: the id the next connection's tracking names belongs to no client any
    # more (the subscriber went away between its CLIENT ID and the CLIENT TRACKING).
    connection = await cached._client.connection()
    connection.tracking_to = None
    cache._subscriber_id = 2**62
    cache.flush()  # so that the next read asks Redis

    assert await cached.deadlines(["cool:a"]) == [0.0]  # the read itself is answered
    assert cache.enabled  # not taken for a server that refuses tracking
    before = mgets(redis_url)
    await cached.deadlines(["cool:a"])  # subscribes again, tracked, kept
    await cached.deadlines(["cool:a"])
    assert mgets(redis_url) == before + 1
    await another_replicas_write_is_reported(stores)
