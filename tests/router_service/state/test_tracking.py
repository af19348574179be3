"""The Redis store's read cache: a deadline or value read once is then read from memory, until
Redis reports a write (by any replica); this replica's own writes are seen at once; a read that
an invalidation overtook is not kept; a lost subscriber drops everything; a server that refuses
tracking is read as before; Redis keeps no per-key table for it (broadcast tracking). All against
a real Redis: a private one where a test counts what the server did (the shared one serves other
test runs too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis

from router_service.clock import ManualClock
from router_service.state import RedisStateStore, SlotRequest
from router_service.state._resp import BACKLOG
from router_service.state._tracking import ReadCache
from tests.helpers import eventually
from tests.replicas.harness import client_address, kill_redis_clients
from tests.replicas.redis_fixtures import PrivateRedis

PREFIX = "t"


def server_info(url: str, section: str) -> dict[str, object]:
    client = redis.Redis.from_url(url)
    try:
        return dict(client.info(section))
    finally:
        client.close()


def mgets(url: str) -> int:
    """MGETs the server has run so far (`INFO commandstats`)."""
    stats = server_info(url, "commandstats").get("cmdstat_mget", {})
    assert isinstance(stats, dict)
    return int(stats.get("calls", 0))


@dataclass
class Replicas:
    cached: RedisStateStore  # with the read cache
    other: RedisStateStore  # without: its reads always reach Redis
    clock: ManualClock
    url: str  # their Redis, this test's own


@pytest.fixture
async def stores(private_redis: PrivateRedis) -> AsyncIterator[Replicas]:
    """Two replicas on one Redis of this test's own and one clock."""
    clock, url = ManualClock(), private_redis.url
    cached = RedisStateStore.from_url(url, prefix=PREFIX, clock=clock)
    other = RedisStateStore.from_url(url, prefix=PREFIX, clock=clock, read_cache=False)
    try:
        yield Replicas(cached, other, clock, url)
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


async def test_a_key_read_once_is_then_read_from_memory(stores: Replicas) -> None:
    cached, other, clock, redis_url = stores.cached, stores.other, stores.clock, stores.url
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


async def test_a_read_overtaken_by_its_keys_invalidation_is_not_kept(stores: Replicas) -> None:
    cached, redis_url = stores.cached, stores.url
    cache = cache_of(cached)
    await cached.deadlines(["warm"])  # the subscriber and tracking are up
    key = f"{PREFIX}:dl:cool:a"

    reading = asyncio.create_task(cached.deadlines(["cool:a"]))
    await asyncio.sleep(0)  # the read is sent; its reply cannot have been read yet
    # What Redis pushes when another replica writes the key before this reply comes back.
    cache._message(["message", "__redis__:invalidate", [key]])
    assert await reading == [0.0]

    before = mgets(redis_url)
    await cached.deadlines(["cool:a"])
    assert mgets(redis_url) == before + 1  # not kept: read from Redis again


async def test_a_lost_subscriber_drops_everything_and_tracking_comes_back(
    stores: Replicas,
) -> None:
    cached = stores.cached
    cache = cache_of(cached)
    await cached.deadlines(["cool:a"])
    subscriber_id = await cache._subscribed()
    assert subscriber_id is not None

    killer = redis.Redis.from_url(stores.url)
    try:
        killer.client_kill_filter(_id=str(subscriber_id))  # the connection tracking lives on
    finally:
        killer.close()

    async def dropped() -> bool:
        return cache.cached([f"{PREFIX}:dl:cool:a"]) is None

    await eventually(dropped, what="the cache emptied after its subscriber was lost")
    # The next read subscribes again and turns tracking on there: another replica's write is
    # reported as before.
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
        await store.get_values(["sticky:s"])
        refusals = [r for r in caplog.records if "redis refused key tracking" in r.getMessage()]
        assert len(refusals) == 1  # logged once
    finally:
        await store.aclose()
        await other.aclose()
        await server.stop()


async def test_keys_read_once_leave_no_table_in_redis(stores: Replicas) -> None:
    """Each new session's sticky and ban keys are read once and seldom written: Redis must keep
    no tracking entry per key read (per-key OPTIN tracking kept each until it was written: the
    soak saw 36 k more a minute), only the store's two prefixes."""
    cached, other, redis_url = stores.cached, stores.other, stores.url
    await other.set_value("sticky:0", "alpha/m", 600)
    for session in range(300):
        await cached.read(deadlines=[f"ban:{session}"], values=[f"sticky:{session}"])
    before = mgets(redis_url)
    assert await cached.get_values(["sticky:0", "sticky:299"]) == ["alpha/m", None]
    assert mgets(redis_url) == before  # they are cached all the same

    tracking = server_info(redis_url, "stats")
    assert tracking["tracking_total_keys"] == 0
    assert tracking["tracking_total_prefixes"] == 2  # {prefix}:dl: and {prefix}:val:
    await another_replicas_write_is_reported(stores)


async def test_a_write_is_reported_once_to_a_replica_that_read_it_on_each_connection(
    private_redis: PrivateRedis,
) -> None:
    """Two replicas, both caching: what one writes, the other's cached read sees once Redis
    reports it, in one report even when it read the key on each of its pooled connections
    (tracking turned on per connection reports a write once per connection)."""
    clock, url = ManualClock(), private_redis.url
    here = RedisStateStore.from_url(url, prefix=PREFIX, clock=clock)
    there = RedisStateStore.from_url(url, prefix=PREFIX, clock=clock)
    try:
        cache = cache_of(here)
        await here.deadlines(["cool:marker"])  # the subscriber is up
        # Enough reads at once for the pool's second connection to take some of them.
        await asyncio.gather(*(here.deadlines(["cool:a"]) for _ in range(2 * BACKLOG)))
        assert all(c is not None for c in here._client._slots)
        await here.deadlines(["cool:a", "cool:marker"])
        seen, until = cache.invalidations, clock.now() + 5

        await there.extend_deadline("cool:a", until)
        await there.extend_deadline("cool:marker", until)  # reported after cool:a's reports

        async def marker_reported() -> bool:
            return cache.cached([f"{PREFIX}:dl:cool:marker"]) is None

        await eventually(marker_reported, what="the invalidation of cool:marker")
        assert cache.invalidations == seen + 2  # cool:a once, cool:marker once
        assert await here.deadlines(["cool:a"]) == [until]
        # And the other way round: `there` had its own read cached.
        assert await there.deadlines(["cool:b"]) == [0.0]
        seen = cache_of(there).invalidations
        await here.extend_deadline("cool:b", until)
        await invalidated(cache_of(there), seen)
        assert await there.deadlines(["cool:b"]) == [until]
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_lost_pooled_connection_keeps_what_was_read(stores: Replicas) -> None:
    """Tracking lives on the subscriber alone: Redis dropping a pooled connection (CLIENT KILL)
    takes no report away, so nothing read needs reading again."""
    cached, redis_url = stores.cached, stores.url
    assert await cached.deadlines(["cool:a"]) == [0.0]
    pooled = await cached._client.connection()
    kill_redis_clients(redis_url, [client_address(pooled)])

    async def lost() -> bool:
        return pooled.broken is not None

    await eventually(lost, what="the pooled connection lost")
    before = mgets(redis_url)
    assert await cached.deadlines(["cool:a"]) == [0.0]
    assert mgets(redis_url) == before  # from memory
    await another_replicas_write_is_reported(stores)


async def test_only_the_cached_kinds_are_tracked(stores: Replicas) -> None:
    """Deadlines and values are the kinds read through the cache: writes of other kinds (leases,
    counters, stored documents) are not reported, and a key of another kind read through the
    cache is not kept (no report would ever come for it)."""
    cached, other, clock = stores.cached, stores.other, stores.clock
    cache = cache_of(cached)
    assert await cached.deadlines(["cool:marker"]) == [0.0]  # subscribed, marker cached
    elsewhere = f"{PREFIX}:doc:r1"
    await cache.mget([elsewhere])
    assert cache.cached([elsewhere]) is None
    seen = cache.invalidations

    await other.acquire(SlotRequest("k", 60, max_in_flight=2))  # slot:k, rate:k
    await other._client.execute("SET", elsewhere, "x")
    await other.extend_deadline("cool:marker", clock.now() + 5)  # reported after those writes

    async def marker_reported() -> bool:
        return cache.cached([f"{PREFIX}:dl:cool:marker"]) is None

    await eventually(marker_reported, what="the invalidation of cool:marker")
    assert cache.invalidations == seen + 1  # cool:marker alone
