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


@pytest.mark.parametrize("outcome", FAILURES, ids=lambda o: o.name)
async def test_cooldown_registered_only_for_deployment_faults(
    outcome: Outcome, http: httpx.AsyncClient
) -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    cooldowns = CooldownsConfig(transient_s=15)
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
        raise UpstreamFailure(outcome, "scripted")

    with pytest.raises(SwitchboardError):
        await runner.run(RequestContext("g", clock, session_id="s"), Plan([deployment]), attempt)

    (until,) = await store.deadlines([deployment.cooldown_name])
    if outcome in COOLS:
        assert until == clock.now() + 15
    else:
        assert until == 0.0
