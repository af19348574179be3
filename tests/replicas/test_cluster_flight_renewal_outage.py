"""A cluster flight's leader (replica A, reaching Redis through a proxy) whose renewals meet a
Redis outage, while replica B (directly on Redis) waits for its answer, time on one ManualClock:
a renewal Redis never had is not counted as one (ResilientStateStore says False), it is logged
once, without the flight's name; the next renewal once Redis answers again holds the lease, so
B still gets A's one upstream call's answer (a HIT)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream
from router_service.state import Landing
from tests.replicas.harness import ask
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_cluster_flight_renewal import cluster, flight_holds, renewed_and_waiting
from tests.replicas.test_cluster_flights import cluster_heard, until, waiting_on_redis
from tests.replicas.test_lost_replies import RETRY_S, StartPair, start_pair

__all__ = ["start_pair"]  # the fixture, shared

pytestmark = pytest.mark.timeout(90)
HIT, MISS = routing_pb2.CACHE_STATUS_HIT, routing_pb2.CACHE_STATUS_MISS
LEASE_S = 3.0  # renewed every second
NOT_RENEWED = "cluster flight's lease was not renewed"


def short_leases(config: dict[str, Any]) -> dict[str, Any]:
    config["cache"] = {"enabled": True, "coalesce": "cluster", "flight_lease_s": LEASE_S}
    return config


async def test_a_renewal_redis_never_had_is_not_counted_and_is_logged_once(
    start_pair: StartPair,
    redis_proxy: RedisProxy,
    fake: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b, clock = await start_pair(short_leases)
    leading = cluster(a)
    warm_up = fake.state.count()  # A's calls before (`start_pair`)
    fake.state.hold()
    question = ask(text="slow")
    leader = asyncio.ensure_future(a.stub.Chat(question))
    await until(lambda: fake.state.held == 1, "A's call upstream, held there")
    follower = asyncio.ensure_future(b.stub.Chat(question))
    await until(lambda: waiting_on_redis(b) == 1, "B's miss waiting for A's flight")
    assert len(flight_holds(a)) == 1

    clock.advance(1.0)
    await until(lambda: renewed_and_waiting(leading, 1), "A's first renewal")
    await redis_proxy.cut()
    with caplog.at_level(logging.WARNING, "switchboard.cache"):
        clock.advance(1.0)  # A's renewal meets the outage
        await until(
            lambda: leading.unrenewed == 1 and leading._renewer._waiting, "A's renewal not made"
        )
        assert leading.renewed == 1  # not counted as a renewal: Redis never had it
        await redis_proxy.restore()
        clock.advance(RETRY_S)  # A's next renewal probes Redis, which answers again
        await until(lambda: leading.renewed == 2, "A's renewal once Redis answers")
    warned = [r.getMessage() for r in caplog.records if NOT_RENEWED in r.getMessage()]
    assert len(warned) == 1 and "cache:" not in warned[0]  # once; no flight's name
    assert not follower.done() and fake.state.count() == warm_up + 1  # B still waits for A's lease

    fake.state.release()
    first, second = await asyncio.wait_for(asyncio.gather(leader, follower), 15)
    assert (first.route.cache, second.route.cache, len(fake.state.calls())) == (
        MISS,
        HIT,
        warm_up + 1,
    )
    assert cluster_heard(b) == {Landing.KEPT: 1}
    await a.runtime.afterwork.drain()
    assert flight_holds(a) == []
