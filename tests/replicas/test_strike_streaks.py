"""When a key's shared hint-less 429 streak ends (its strikes, counted in Redis for every
replica): at a success on any replica, one that never met a strike or started since included,
and a success's clear queued in an outage does not wipe the strikes others counted since."""

from __future__ import annotations

import time
from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.replicas.harness import ask, replica_config, two_replicas
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_lost_replies import StartPair, start_pair
from tests.replicas.test_outage_strikes import kb_backoff
from tests.replicas.test_outage_writes import as_is, back_on_shared

__all__ = ["start_pair"]  # the fixture, shared

LIMITED = Scenario.rate_limited(retry_after=None)


@pytest.mark.parametrize("succeeds_on", ["the other replica", "a replica started since"])
async def test_a_success_on_a_replica_that_met_no_strike_ends_the_streak_there(
    succeeds_on: str,
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """kb met two 429s without a hint on A (each once its backoff was over), then serves B
    (which never met one, or was started since: a restarted A) well. B's next such 429 begins
    a new streak there (2.5 to 7.5 s from the 5 s base), not the third strike (10 to 30 s)
    while the old count lives (twice `backoff_max_s`)."""
    config: dict[str, Any] = replica_config(fake.base_url, redis_url, redis_prefix)
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(LIMITED, model="model-b")
    for _ in range(2):
        clock.advance(await kb_backoff(a) + 0.01)
    if succeeds_on == "a replica started since":
        b = await start_router(config, clock=clock)
    fake.state.clear_scenarios()
    assert (await b.stub.Chat(ask("beta/model-b"))).route.deployment == "beta/model-b"
    clock.advance(60.0)
    fake.state.set_scenario(LIMITED, model="model-b")

    wait = await kb_backoff(b)

    assert fake.state.count(model="model-b") == 4
    assert 2.5 <= wait < 7.5, wait


async def test_a_success_in_an_outage_does_not_wipe_the_strikes_counted_since_by_others(
    start_pair: StartPair, redis_proxy: RedisProxy, fake: FakeUpstream
) -> None:
    """kb met a 429 without a hint on A, which then lost Redis and saw kb succeed (its clear of
    the strikes queued). B met two more meanwhile. A back on Redis replays its clear, but only
    over the strikes before its success: B's next is its third (10 to 30 s), not a first."""
    a, b, clock = await start_pair(as_is)
    fake.state.set_scenario(LIMITED, model="model-b")
    clock.advance(await kb_backoff(a) + 0.01)
    await redis_proxy.cut()
    fake.state.clear_scenarios()
    assert (await a.stub.Chat(ask("beta/model-b"))).route.deployment == "beta/model-b"
    assert a.runtime.store.outage_counts()["degraded"]
    clock.advance(1.0)
    fake.state.set_scenario(LIMITED, model="model-b")
    clock.advance(await kb_backoff(b) + 0.01)  # a second strike (A's success unseen here)
    clock.advance(await kb_backoff(b) + 0.01)
    await back_on_shared(a, redis_proxy, clock)

    wait = await kb_backoff(b)

    assert fake.state.count(model="model-b") == 5
    assert 20.0 <= wait < 60.0, wait


async def test_a_strike_of_a_replica_that_saw_no_success_does_not_renew_the_old_streak(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """kb met two 429s without a hint on A, then served B well; A, which has not seen that,
    meets a third (its backoff from the old streak: 10 to 30 s). B saw kb work since that streak
    began: its next such 429 is a first (2.5 to 7.5 s), not the fourth (20 to 60 s)."""
    config: dict[str, Any] = replica_config(fake.base_url, redis_url, redis_prefix)
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(LIMITED, model="model-b")
    for _ in range(2):
        clock.advance(await kb_backoff(a) + 0.01)
    fake.state.clear_scenarios()
    assert (await b.stub.Chat(ask("beta/model-b"))).route.deployment == "beta/model-b"
    fake.state.set_scenario(LIMITED, model="model-b")
    third = await kb_backoff(a)
    clock.advance(third + 0.01)

    wait = await kb_backoff(b)

    assert fake.state.count(model="model-b") == 5
    assert 10.0 <= third < 30.0, third
    assert 2.5 <= wait < 7.5, wait
