"""Flights on Redis across replicas: a landing reaches another replica's watcher through pub/sub
(one subscriber connection per replica, gone with the store); a lost subscriber ends every wait
(LAPSED); a server without SUBSCRIBE still leads but never waits; a claim whose caller left
before Redis's reply lands its lease EMPTY; an unreachable Redis lets each replica go alone."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis

from router_service.clock import ManualClock
from router_service.state import (
    FlightClaim,
    Landing,
    MemoryStateStore,
    RedisStateStore,
    ResilientStateStore,
    _redis_flights,
)
from tests.helpers import advance_until_done, eventually, free_port
from tests.replicas.harness import client_address, kill_redis_clients
from tests.replicas.redis_fixtures import PrivateRedis, RedisProxy

# A landing's wait never ends by itself here: what ends it is heard (a landing, or the hearing
# lost), and a wait that should have ended meets a test's hang guard instead of lapsing unseen.
WAIT_S = 3600.0
HANG_GUARD_S = 15


def subscribers(url: str, channel: str) -> int:
    """Connections subscribed to `channel` (PUBSUB NUMSUB): what a replica leaves behind."""
    client = redis.Redis.from_url(url)
    try:
        ((_, count),) = client.pubsub_numsub(channel)
        return int(count)
    finally:
        client.close()


async def test_a_landing_reaches_a_watcher_on_another_replica(
    redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    one = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    two = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    channel = one.notices.channel
    try:
        lead = await one.claim_flight("n", 30)
        assert lead.token
        with two.watch_flight("n") as watch:
            claim = await two.claim_flight("n", 30)
            assert claim == FlightClaim(None, lead.token, 30.0)
            waiting = asyncio.create_task(watch.landing(claim.holder, WAIT_S))
            await one.land_flight("n", lead.token, Landing.KEPT)
            assert await waiting == Landing.KEPT
        assert subscribers(redis_url, channel) == 2  # one per replica, kept for the next flight
        assert two.flight_board.watching == 0
    finally:
        await one.aclose()
        await two.aclose()
    assert not one.notices.connected and not two.notices.connected

    async def unsubscribed() -> bool:  # Redis sees the connections close a little later
        return subscribers(redis_url, channel) == 0

    await eventually(unsubscribed, what="no subscriber left on the channel")


async def test_a_lost_subscriber_ends_every_wait_and_the_next_claim_subscribes_again(
    redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    one = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    two = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    try:
        lead = await one.claim_flight("n", 30)
        with two.watch_flight("n") as watch:
            claim = await two.claim_flight("n", 30)
            waiting = asyncio.create_task(watch.landing(claim.holder, WAIT_S))
            subscriber = two.notices._subscriber
            assert subscriber is not None
            kill_redis_clients(redis_url, [client_address(subscriber)])
            async with asyncio.timeout(HANG_GUARD_S):
                assert await waiting == Landing.LAPSED  # it can no longer hear: it goes on
        assert (await two.claim_flight("n", 30)).holder == lead.token
        assert two.notices.connected
    finally:
        await one.aclose()
        await two.aclose()


async def test_closing_the_store_ends_the_waits_on_it(redis_url: str, redis_prefix: str) -> None:
    store = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=ManualClock())
    lead = await store.claim_flight("n", 30)
    with store.watch_flight("n") as watch:
        claim = await store.claim_flight("n", 30)
        waiting = asyncio.create_task(watch.landing(claim.holder, WAIT_S))
        await asyncio.sleep(0)  # it waits
        await store.aclose()
        async with asyncio.timeout(HANG_GUARD_S):
            assert await waiting == Landing.LAPSED
    assert lead.token


async def test_a_server_without_subscribe_leads_but_never_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = PrivateRedis(args=("--rename-command", "SUBSCRIBE", ""))
    await server.start()
    store = RedisStateStore.from_url(server.url, prefix="t", clock=ManualClock())
    try:
        lead = await store.claim_flight("n", 30)
        assert lead.token  # others may still hear of it (or see its lease end)
        assert await store.claim_flight("n", 30) == FlightClaim(None, lead.token, 0.0)
        refusals = [r for r in caplog.records if "refused SUBSCRIBE" in r.getMessage()]
        assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
    finally:
        await store.aclose()
        await server.stop()


async def test_a_claim_whose_caller_left_before_the_reply_lands_empty(
    redis_proxy: RedisProxy, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    through = RedisStateStore.from_url(redis_proxy.url, prefix=redis_prefix, clock=clock)
    direct = RedisStateStore.from_url(redis_url, prefix=redis_prefix, clock=clock)
    try:
        await through.notices.subscribed()
        await direct.notices.subscribed()
        with direct.watch_flight("n") as watch:
            redis_proxy.hold_replies()
            claim = asyncio.create_task(through.claim_flight("n", 30))
            await redis_proxy.held.wait()  # Redis granted it; the reply is held back
            redis_proxy.sent.clear()
            claim.cancel()
            with pytest.raises(asyncio.CancelledError):
                await claim
            async with asyncio.timeout(15):  # a bound, not a wait: the undo follows the cancel
                await redis_proxy.sent.wait()
            await redis_proxy.restore()
            # The claim's token (the store's first id): its lease landed EMPTY, heard here.
            assert await watch.landing(f"{through._instance}.1", WAIT_S) == Landing.EMPTY
            assert (await direct.claim_flight("n", 30)).token is not None  # the lease is gone
    finally:
        await through.aclose()
        await direct.aclose()


async def test_an_unreachable_redis_lets_each_replica_go_alone() -> None:
    clock = ManualClock()
    shared = RedisStateStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="t", clock=clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock)
    try:
        with store.watch_flight("n"):
            assert await store.claim_flight("n", 30) == FlightClaim(None)
        await store.land_flight("n", "t.1", Landing.EMPTY)  # harmless
        assert store.degraded
    finally:
        await store.aclose()


async def test_a_subscriber_lost_before_its_reply_lets_the_replica_go_alone(
    redis_proxy: RedisProxy, redis_prefix: str
) -> None:
    clock = ManualClock()
    shared = RedisStateStore.from_url(redis_proxy.url, prefix=redis_prefix, clock=clock)
    store = ResilientStateStore(shared, MemoryStateStore(clock), clock=clock)
    try:
        redis_proxy.hold_replies()
        with store.watch_flight("n"):
            claim = asyncio.create_task(store.claim_flight("n", 30))
            await redis_proxy.held.wait()  # SUBSCRIBE reached Redis; its reply is held back
            await redis_proxy.cut()  # and is lost with its connection
            assert await claim == FlightClaim(None)  # as with Redis unreachable: go alone
    finally:
        await store.aclose()


async def test_a_subscriber_gone_silent_ends_every_wait(
    redis_proxy: RedisProxy, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection dropped on the way without a reset (an idle timeout in a load balancer or a
    # NAT): nothing more arrives, and nothing says so. Every wait would run to its lease's end,
    # each time, for good.
    monkeypatch.setattr(_redis_flights, "_PING_S", 0.05)
    # Replies are timed on a clock of their own, moved by the test: the subscription's reply is
    # never late on a loaded machine, and the store's clock (the wait's lease) stays put, so
    # only the silence found out can end the wait.
    replies = ManualClock()
    store = RedisStateStore.from_url(
        redis_proxy.url,
        prefix=redis_prefix,
        clock=ManualClock(),
        socket_timeout_s=0.2,
        reply_clock=replies,
    )
    try:
        assert await store.notices.subscribed()
        redis_proxy.hold_replies()  # the subscriber hears nothing from now on
        with store.watch_flight("n") as watch:
            landing = asyncio.ensure_future(watch.landing("t.1", 10 * WAIT_S))
            await advance_until_done(replies, 0.2, landing, what="pings finding it silent")
            assert landing.result() == Landing.LAPSED
        assert not store.notices.connected  # the next claim subscribes again
    finally:
        await store.aclose()
