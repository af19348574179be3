"""When a key's shared hint-less 429 streak ends (its strikes, counted in Redis for every
replica): at a success on any replica, one that never met a strike or started since included."""

from __future__ import annotations

import time
from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.replicas.harness import ask, replica_config, two_replicas
from tests.replicas.test_outage_strikes import kb_backoff

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
