"""Which outcomes put a deployment on the shared, global cooldown: each outcome, registered or not,
through the real attempt loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from pydantic import SecretStr

from router_service.clock import ManualClock
from router_service.config import (
    CooldownsConfig,
    KeyConfig,
    ProviderConfig,
    RoutingConfig,
    SessionsConfig,
)
from router_service.engine import AttemptRunner, Deployment, Plan, RequestContext
from router_service.errors import SwitchboardError, UpstreamFailure
from router_service.keys import KeyLease, KeyPool
from router_service.outcomes import Outcome
from router_service.providers import OpenAIAdapter
from router_service.routing import RoutingStats
from router_service.sessions import SessionState
from router_service.state import MemoryStateStore

COOLS = {
    Outcome.UPSTREAM_ERROR,
    Outcome.CONNECT_FAILED,
    Outcome.FIRST_CHUNK_TIMEOUT,
    Outcome.STALLED,
}
FAILURES = [o for o in Outcome if o not in (Outcome.OK, Outcome.CANCELLED)]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def fail_once(
    http: httpx.AsyncClient, failure: UpstreamFailure, cooldowns: CooldownsConfig
) -> tuple[ManualClock, float]:
    """One attempt at a one-deployment plan that fails with `failure`: the clock, and until
    when its deployment cools."""
    clock = ManualClock()
    store = MemoryStateStore(clock)
    keys = [KeyConfig(key=SecretStr("k1"))]
    pool = KeyPool("p", keys, store=store, clock=clock, cooldowns=cooldowns, lease_ttl_s=60)
    adapter = OpenAIAdapter(
        "p", ProviderConfig(base_url="http://127.0.0.1:9/v1", keys=keys), http, clock
    )
    deployment = Deployment("p/m", "p", "m", adapter, pool)
    runner = AttemptRunner(
        store,
        clock,
        cooldowns,
        SessionState(store, clock, SessionsConfig()),
        RoutingStats(store, clock, RoutingConfig()),
    )

    async def attempt(d: Deployment, lease: KeyLease, stack: AsyncExitStack) -> None:
        raise failure

    with pytest.raises(SwitchboardError):
        await runner.run(RequestContext("g", clock, session_id="s"), Plan([deployment]), attempt)
    (until,) = await store.deadlines([deployment.cooldown_name])
    return clock, until


@pytest.mark.parametrize("outcome", FAILURES, ids=lambda o: o.name)
async def test_cooldown_registered_only_for_deployment_faults(
    outcome: Outcome, http: httpx.AsyncClient
) -> None:
    failure = UpstreamFailure(outcome, "scripted")
    clock, until = await fail_once(http, failure, CooldownsConfig(transient_s=15))

    if outcome in COOLS:
        assert until == clock.now() + 15
    else:
        assert until == 0.0


@pytest.mark.parametrize(
    ("retry_after_s", "cooled_s"),
    [
        (None, 15.0),
        (40.0, 40.0),  # the upstream said when it is back (a 503's, a 529's Retry-After)
        (2.0, 15.0),  # never shorter than transient_s: Retry-After: 0 would not cool it at all
        (1e9, 120.0),  # capped: it cools the deployment for everyone
        (300.0, 120.0),  # a key's longer cap (retry_after_max_s) is not the deployment's
    ],
)
async def test_a_server_failures_wait_cools_the_deployment_that_long(
    http: httpx.AsyncClient, retry_after_s: float | None, cooled_s: float
) -> None:
    failure = UpstreamFailure(Outcome.UPSTREAM_ERROR, "503", retry_after_s=retry_after_s)
    cooldowns = CooldownsConfig(transient_s=15, retry_after_max_s=600, server_retry_after_max_s=120)
    clock, until = await fail_once(http, failure, cooldowns)

    assert until == clock.now() + cooled_s
