"""RouteLeases (PickRoute): what a pick took is given back once, however it ends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from router_service.clock import ManualClock
from router_service.engine import Planner, RequestContext, RouteLeases
from router_service.errors import NoCapacityError
from router_service.keys import KeyPool
from router_service.outcomes import Outcome
from router_service.state import MemoryStateStore
from tests.helpers import eventually
from tests.router_service.engine.test_attempt_end import attempt_runner, http

__all__ = ["http"]  # the fixture, shared


class SlowMarks(MemoryStateStore):
    """A session's active mark takes a round trip (Redis, under provider-ban): the first one's
    answer never comes before its caller leaves; the later ones' come at once."""

    completes_without_waiting = False

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.entering = asyncio.Event()

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        if self.entering.is_set():
            return await super().enter(group, member, limit=limit, ttl_s=ttl_s)
        self.entering.set()
        await asyncio.Event().wait()  # the answer never comes before the caller leaves
        raise AssertionError("unreachable")


def route_leases(
    http: httpx.AsyncClient,
    store: MemoryStateStore,
    clock: ManualClock,
    kind: type[RouteLeases] = RouteLeases,
    **provider: Any,
) -> tuple[RouteLeases, KeyPool]:
    runner, deployment = attempt_runner(http, store, clock, **provider)
    planner = Planner(
        {"p/m": deployment},
        {},
        store=store,
        clock=clock,
        stats=runner.stats,
        sessions=runner.sessions,
    )
    return kind(planner, runner, clock, ttl_s=60), deployment.pool


async def test_a_pick_cancelled_while_its_session_is_marked_gives_its_key_back(
    http: httpx.AsyncClient,
) -> None:
    clock = ManualClock()
    store = SlowMarks(clock)
    leases, pool = route_leases(http, store, clock, thread_protection="provider-ban")
    ctx = RequestContext("p/m", clock, session_id="s")

    pick = asyncio.create_task(leases.pick(ctx, tokens=0, exclude=frozenset()))
    await store.entering.wait()
    pick.cancel()  # the PickRoute caller went away (its deadline, a disconnect)
    with pytest.raises(asyncio.CancelledError):
        await pick
    assert pool.health[pool.keys[0].fingerprint].in_flight == 0
    assert await store.held([pool.slot_name(pool.keys[0])]) == [0]  # not held for its TTL
    assert len(leases) == 0


class SlowReleases(MemoryStateStore):
    """A release takes a round trip (Redis)."""

    completes_without_waiting = False

    async def release(self, resource: str, lease_id: str) -> None:
        await asyncio.sleep(0)
        await super().release(resource, lease_id)


async def test_expired_picks_swept_by_two_at_once_are_each_given_back_once(
    http: httpx.AsyncClient,
) -> None:
    clock = ManualClock()
    store = SlowReleases(clock)
    leases, pool = route_leases(http, store, clock)
    for session in ("s1", "s2"):
        await leases.pick(
            RequestContext("p/m", clock, session_id=session), tokens=0, exclude=frozenset()
        )
    clock.advance(61.0)
    # The background sweep and a new pick's sweep, at once.
    assert sorted(await asyncio.gather(leases.sweep(), leases.sweep())) == [1, 1]
    assert len(leases) == 0
    assert await store.held([pool.slot_name(pool.keys[0])]) == [0]


async def test_a_pick_without_a_session_takes_a_place_of_max_sessions(
    http: httpx.AsyncClient,
) -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    leases, _ = route_leases(http, store, clock, thread_protection="provider-ban", max_sessions=1)

    def ctx(session: str) -> RequestContext:
        return RequestContext("p/m", clock, session_id=session)

    held = await leases.pick(ctx(""), tokens=0, exclude=frozenset())
    # The provider serves one conversation at once: the sessionless pick is that one.
    for session in ("s", ""):
        with pytest.raises(NoCapacityError):
            await leases.pick(ctx(session), tokens=0, exclude=frozenset())
    assert len(await store.members("active:p")) == 1
    assert await leases.report(held.lease_id, Outcome.OK)
    assert await store.members("active:p") == {}  # its place given back with the lease
    await leases.pick(ctx(""), tokens=0, exclude=frozenset())


async def test_a_pick_on_the_memory_store_keeps_no_record_of_its_route(
    http: httpx.AsyncClient,
) -> None:
    # One process: no other replica could take its report, and a record would take room from
    # the stored responses (`state.memory_document_bytes`) and work from every pick.
    clock = ManualClock()
    store = MemoryStateStore(clock)
    leases, pool = route_leases(http, store, clock)
    ctx = RequestContext("p/m", clock, session_id="s")
    picked = await leases.pick(ctx, tokens=0, exclude=frozenset())
    assert store.documents.size_bytes == 0
    assert await leases.report(picked.lease_id, Outcome.OK)
    assert not await leases.report(picked.lease_id, Outcome.OK)
    assert await store.held([pool.slot_name(pool.keys[0])]) == [0]


async def test_a_pick_refused_by_max_sessions_is_told_why_and_when(
    http: httpx.AsyncClient,
) -> None:
    clock = ManualClock()
    store = MemoryStateStore(clock)
    leases, _ = route_leases(http, store, clock, thread_protection="provider-ban", max_sessions=1)
    await leases.pick(RequestContext("p/m", clock, session_id="s1"), tokens=0, exclude=frozenset())
    with pytest.raises(NoCapacityError) as busy:
        ctx = RequestContext("p/m", clock, session_id="s2")
        await leases.pick(ctx, tokens=0, exclude=frozenset())
    # As a proxied call's (README: thread protection): the keys are fine, the provider is full.
    assert "max_sessions" in str(busy.value)
    assert busy.value.retry_after_s == pytest.approx(1.0)


class BuggySweeps(RouteLeases):
    """Its first sweeps fail with what no store translates (a bug, a foreign error)."""

    failing = 2
    sweeps = 0

    async def sweep(self) -> int:
        self.sweeps += 1
        if self.sweeps <= self.failing:
            raise RuntimeError("a bug")
        return await super().sweep()


async def test_the_background_sweep_outlives_a_failed_sweep(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweeper stopped by one failure would leave expired leases holding their keys until a
    pick came: the failure is logged, the next sweep goes on and gives them back."""
    clock = ManualClock()
    store = MemoryStateStore(clock)
    leases, pool = route_leases(http, store, clock, BuggySweeps)
    assert isinstance(leases, BuggySweeps)
    leases.sweep_every_s = 0.0  # one sweep per turn of the loop: no wall-clock wait
    await leases.pick(RequestContext("p/m", clock, session_id="s"), tokens=0, exclude=frozenset())
    clock.advance(61.0)
    leases.start()
    try:

        async def given_back() -> bool:
            return len(leases) == 0 and leases.sweeps > leases.failing

        await eventually(given_back, what="the expired lease swept after the failed sweeps")
        assert await store.held([pool.slot_name(pool.keys[0])]) == [0]
    finally:
        await leases.aclose()
    failed = [r for r in caplog.records if r.getMessage() == "sweeping PickRoute leases failed"]
    assert len(failed) == leases.failing
    assert all(r.exc_info is not None for r in failed)
