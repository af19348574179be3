"""Property: whatever mix of outcomes, cancellations and timeouts thousands of attempts meet,
every lease and every session mark comes back and no key is ever held beyond its limit."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from router_service.clock import SYSTEM_CLOCK
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

LIMIT = 2
FAILURES = [o for o in Outcome if o not in (Outcome.OK, Outcome.CANCELLED)]
# One step of one request: an outcome, or "cancel" (the caller leaves mid-attempt), or "timeout".
STEP = st.sampled_from([*FAILURES, Outcome.OK, Outcome.OK, "cancel", "timeout", "bug"])


async def run_requests(plans: list[list[object]]) -> tuple[int, int]:
    store = MemoryStateStore(SYSTEM_CLOCK)
    # Zero-length cooldowns: health reactions happen, but never starve the next example.
    cooldowns = CooldownsConfig(
        transient_s=1e-6, rate_limit_backoff_s=1e-6, quota_disable_s=1e-6, auth_disable_s=1e-6
    )
    keys = [KeyConfig(key=SecretStr(f"k{i}"), max_in_flight=LIMIT) for i in range(3)]
    pool = KeyPool("p", keys, store=store, clock=SYSTEM_CLOCK, cooldowns=cooldowns, lease_ttl_s=60)
    async with httpx.AsyncClient() as http:
        config = ProviderConfig(base_url="http://127.0.0.1:9/v1", keys=keys, queue_timeout_s=0.01)
        adapter = OpenAIAdapter("p", config, http, SYSTEM_CLOCK)
        deployments = [Deployment(f"p/m{i}", "p", f"m{i}", adapter, pool) for i in range(2)]
        sessions = SessionState(store, SYSTEM_CLOCK, SessionsConfig())
        stats = RoutingStats(store, SYSTEM_CLOCK, RoutingConfig())
        runner = AttemptRunner(store, SYSTEM_CLOCK, cooldowns, sessions, stats)
        route_plan = Plan(list(deployments))
        peak = 0
        plan_ids: list[str] = []

        async def one(plan: list[object]) -> None:
            steps = iter(plan)

            async def attempt(d: Deployment, lease: KeyLease, stack: AsyncExitStack) -> str:
                nonlocal peak
                held = await store.held([pool.slot_name(k) for k in pool.keys])
                peak = max(peak, *held)
                await asyncio.sleep(0)
                step = next(steps, Outcome.OK)
                if step == "cancel":
                    raise asyncio.CancelledError
                if step == "timeout":
                    async with asyncio.timeout(0):
                        await asyncio.Event().wait()
                if step == "bug":
                    raise RuntimeError("a bug inside the attempt")
                assert isinstance(step, Outcome)
                if step is not Outcome.OK:
                    raise UpstreamFailure(step, "scripted")
                return "ok"

            ctx = RequestContext("g", SYSTEM_CLOCK, session_id=f"s{len(plan_ids)}")
            plan_ids.append(ctx.session_id)
            try:
                _, _, stack = await runner.run(ctx, route_plan, attempt)
                await stack.aclose()
            except (SwitchboardError, RuntimeError, TimeoutError, asyncio.CancelledError):
                pass

        await asyncio.gather(*(asyncio.create_task(one(p)) for p in plans))
        held = await store.held([pool.slot_name(k) for k in pool.keys])
        marks = await sessions.active("p")
        return sum(held) + sum(marks.values()), peak


@settings(max_examples=60)
@given(st.lists(st.lists(STEP, min_size=1, max_size=6), min_size=5, max_size=40))
def test_leases_always_return_and_limits_hold(plans: list[list[object]]) -> None:
    held, peak = asyncio.run(run_requests(plans))
    assert held == 0
    assert peak <= LIMIT
