"""One renewer per process for every open stream's holds (engine/_stream_holds.py): no task per
stream; the holds due renewed together (one Redis round trip); handed to a reloaded runtime
with the store, woken sooner by a reload's shorter TTL, stopped by the lineage's last close."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest

from router_service.config import SwitchboardConfig
from router_service.engine import AttemptRunner, Deployment, Plan, RequestContext
from router_service.runtime import Runtime
from router_service.state import MemoryStateStore
from tests.conftest import base_config
from tests.router_service.engine.test_attempt_end import _answer, attempt_runner, http
from tests.router_service.engine.test_stream_holds import (
    RenewerClock,
    gone_after_a_period,
    renewers,
)

__all__ = ["http"]  # the fixture, shared

pytestmark = pytest.mark.timeout(30)


class Pipelined(MemoryStateStore):
    """The memory store as Redis is called: calls started together share a round trip. Counts
    the renewals under way at once."""

    batches_concurrent_calls = True

    def __init__(self, clock: RenewerClock) -> None:
        super().__init__(clock)
        self.under_way = 0
        self.most_at_once = 0

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        self.under_way += 1
        self.most_at_once = max(self.most_at_once, self.under_way)
        await asyncio.sleep(0)  # a round trip: whatever starts in this turn shares it
        self.under_way -= 1
        return await super().renew(resource, lease_id, ttl_s)


async def open_stream(
    runner: AttemptRunner, deployment: Deployment, clock: RenewerClock, session: str
) -> AsyncExitStack:
    """What a stream's attempt leaves open: its lease and session mark, renewed."""
    ctx = RequestContext("g", clock, session_id=session)
    _, _, stack = await runner.run(ctx, Plan([deployment]), _answer, record_success=False)
    return stack


async def test_open_streams_share_one_renewer_and_are_renewed_together(
    http: httpx.AsyncClient,
) -> None:
    clock = RenewerClock()
    store = Pipelined(clock)
    runner, deployment = attempt_runner(
        http, store, clock, thread_protection="provider-ban", max_sessions=4
    )
    slot = deployment.pool.slot_name(deployment.pool.keys[0])
    stacks = [await open_stream(runner, deployment, clock, session) for session in "abc"]
    assert len(renewers()) == 1  # not one a stream
    period_s = deployment.pool.lease_ttl_s / 3
    await clock.pass_periods(6, period_s)  # twice the lease's TTL
    assert await store.held([slot]) == [3]
    assert await runner.sessions.active("p") == {"a": 1, "b": 1, "c": 1}
    assert store.most_at_once == 3  # each period's renewals in one round trip
    for stack in stacks:
        await stack.aclose()
    assert await store.held([slot]) == [0] and await runner.sessions.active("p") == {}
    await gone_after_a_period(clock, period_s)


def _config(lease_ttl_s: float) -> SwitchboardConfig:
    raw = base_config("http://127.0.0.1:9/v1", sessions={"active_ttl_s": 900})
    raw["server"]["lease_ttl_s"] = lease_ttl_s
    raw["providers"]["alpha"].update(max_sessions=8, thread_protection="provider-ban")
    return SwitchboardConfig.model_validate(raw)


async def test_a_reload_hands_the_renewer_over_and_the_last_close_stops_it() -> None:
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    old = await Runtime.create(_config(30), clock=clock, store=store)
    try:
        deployment = old.planner.deployments["alpha/model-a"]
        before = await open_stream(old.runner, deployment, clock, "before")
        await clock.pass_periods(0, 0.0)  # its renewer waits 10 s
        # A reload shortens the lease's TTL to 9 s: the renewer, waiting 10, must wake sooner.
        new = old.successor(_config(9))
    except BaseException:
        await old.aclose()
        raise
    try:
        await old.aclose()  # the streams it began run on
        renamed = new.planner.deployments["alpha/model-a"]
        after = await open_stream(new.runner, renamed, clock, "after")
        await clock.pass_periods(12, 3.0)  # 36 s: four times the shorter TTL
        assert len(renewers()) == 1  # the one woken sooner took the waiting one's place
        slots = [deployment.pool.slot_name(key) for key in deployment.pool.keys]
        assert sum(await store.held(slots)) == 2
        assert await new.sessions.active("alpha") == {"before": 1, "after": 1}
        await before.aclose()
        await after.aclose()
    finally:
        await new.aclose()
    assert not renewers()  # stopped at once by the lineage's last close
