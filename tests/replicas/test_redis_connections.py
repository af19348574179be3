"""A replica's connections to Redis break while the shared Redis runs on: Redis drops them
(`CLIENT KILL`: what a restart or a failover does to them) or the network between goes away and
comes back (a proxy we cut). The replica's read cache never serves what it can no longer hear
about, requests go on, and shared state resumes by itself without a leaked lease or task."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from types import CoroutineType
from typing import Any

import pytest

import router_service
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.replicas.harness import (
    ask,
    kill_redis_clients,
    redis_addresses,
    redis_store,
    replica_config,
    set_enabled,
    two_replicas,
)
from tests.replicas.redis_fixtures import RedisProxy

RETRY_S = 1.0
ROUTER = str(Path(router_service.__file__).parent)


def ours(tasks: set[asyncio.Task[Any]]) -> list[str]:
    """The router's own running tasks (not gRPC's, not the test's), by coroutine."""
    names = []
    for task in tasks:
        coro = task.get_coro()
        if isinstance(coro, CoroutineType) and coro.cr_code.co_filename.startswith(ROUTER):
            names.append(coro.__qualname__)
    return sorted(names)


async def keys_served(fake: FakeUpstream, replica: RouterHandle, calls: int = 6) -> set[str]:
    seen = len(fake.state.calls())
    for _ in range(calls):
        await replica.stub.Chat(ask())
    return {r.key for r in fake.state.calls()[seen:]}


@pytest.mark.parametrize("which", ["pooled", "subscriber", "all"])
async def test_a_replica_whose_redis_connections_were_killed_reads_changes_at_once(
    which: str, fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """The clock stands still: the cache's 10 s age limit is not what brings the change."""
    a, b = await two_replicas(start_router, replica_config(fake.base_url, redis_url, redis_prefix))
    assert await keys_served(fake, b) == {"k1", "k2"}  # B's cache holds both keys' health
    # B is idle (its releases are out): no command of its is lost with a connection, which
    # would take B to its local state for a while (test_..._cut_off_from_redis_...).
    await b.runtime.afterwork.drain()
    connections = redis_addresses(b)
    addresses = (
        [*connections["pooled"], *connections["subscriber"]]
        if which == "all"
        else connections[which]
    )
    assert addresses
    kill_redis_clients(redis_url, addresses)

    await set_enabled(a, "k1", False)
    assert await keys_served(fake, b) == {"k2"}
    assert not b.runtime.store.outage_counts()["degraded"]
    await set_enabled(a, "k1", True)
    assert await keys_served(fake, b) == {"k1", "k2"}
    # Tracking is back as well: a change now comes by invalidation, not by a refill.
    cache = redis_store(b).cache
    assert cache is not None
    hits = cache.hits
    await set_enabled(a, "k2", False)
    assert await keys_served(fake, b) == {"k1"}
    assert cache.hits > hits


async def test_a_replica_cut_off_from_redis_serves_on_and_comes_back_without_leaks(
    redis_proxy: RedisProxy,  # first: it outlives the routers (they stop through it)
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(time.time())
    through = replica_config(fake.base_url, redis_proxy.url, redis_prefix)
    # The proxy refuses at once when cut: the timeouts (hang guards) only bound a slow reply.
    through["state"].update(retry_interval_s=RETRY_S)
    a = await start_router(through, clock=clock)
    b = await start_router(replica_config(fake.base_url, redis_url, redis_prefix), clock=clock)
    store = a.runtime.store
    await keys_served(fake, a, 2)
    await a.runtime.afterwork.drain()
    before = ours(asyncio.all_tasks())
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    stream = a.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    async for message in stream:
        if message.WhichOneof("event") == "chunk":
            break
    fake.state.clear_scenarios()

    async def back_on_shared() -> bool:
        return not store.outage_counts()["degraded"]

    async def lease_in_redis() -> bool:  # polled: a lease without limits is posted, not awaited
        return await b.leases_held() == 1

    await eventually(lease_in_redis, what="A's stream's lease seen from B")

    with caplog.at_level(logging.WARNING, logger="switchboard.state"):
        await redis_proxy.cut()
        stream.cancel()  # its lease's release is queued for when Redis answers
        assert await keys_served(fake, a, 10) == {"k1", "k2"}  # served from local state
        assert store.outage_counts()["degraded"] == 1 and store.outage_counts()["outages"] == 1
        await set_enabled(b, "k1", False)  # A cannot hear of it

        await redis_proxy.restore()
        assert await keys_served(fake, a, 2) == {"k1", "k2"}  # retried once per interval
        clock.advance(RETRY_S)
        # One call probes Redis: this one, or a task the clock woke (the issued keys' follower),
        # while which this one is served from local state (k1 on): back once that probe is.
        await a.stub.Chat(ask())
        await eventually(back_on_shared, what="A back on shared state")
        assert await keys_served(fake, a) == {"k2"}  # k1 is off
    counts = store.outage_counts()
    assert (counts["degraded"], counts["outages"]) == (0, 1) and counts["fallbacks"] >= 10
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "unreachable" in m]) == 1  # one warning per outage
    assert len([m for m in lines if "reachable again" in m]) == 1
    await a.runtime.afterwork.drain()
    assert a.runtime.afterwork.pending == 0
    assert await a.leases_held() == 0 and await b.leases_held() == 0  # the stream's, replayed
    # Nothing of the outage still runs (the stream renewer outlives its last stream a period).
    assert [n for n in ours(asyncio.all_tasks()) if n != "HoldRenewer._run"] == before
