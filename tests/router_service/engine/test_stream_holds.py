"""What an open stream holds outlives the TTLs those holds carry (`server.lease_ttl_s`,
`sessions.active_ttl_s`): its key lease and its session's active mark are renewed while it runs
(a long reasoning answer), and given back when it ends."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.engine import Plan, RequestContext
from router_service.engine._stream_holds import RENEWER
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.helpers import advance_until_done, eventually
from tests.router_service.auth.helpers import bearer, client
from tests.router_service.engine.test_attempt_end import _answer, attempt_runner, http
from tests.router_service.server.test_leases import request

__all__ = ["http"]  # the fixture, shared

pytestmark = pytest.mark.timeout(30)


class RenewerClock(ManualClock):
    """A manual clock that tells how often a stream's renewer began to wait on it: once it
    waits again, its renewal for the time passed is done (and the next one is set)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__(start)
        self.renewer_waits = 0

    async def wait(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name() == RENEWER:
            self.renewer_waits += 1
        await super().wait(seconds)

    async def pass_periods(self, periods: int, period_s: float) -> None:
        """Let `periods` renewal periods pass, each renewal done before the next period."""
        for done in range(periods + 1):  # 0: the renewer is set, its first wait begun
            self.advance(period_s if done else 0.0)
            # The process's renewer may have waited before (earlier streams, a restart).
            waits = self.renewer_waits + 1 if done else 1

            async def renewed(waits: int = waits) -> bool:
                return self.renewer_waits >= waits

            await eventually(renewed, what=f"renewal {done}")


def renewers() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == RENEWER]


async def gone_after_a_period(clock: ManualClock, period_s: float) -> None:
    """The process's renewer outlives the last stream by a period (so streams one after
    another do not each start one), and ends at its wake that finds nothing held."""
    clock.advance(period_s)

    async def gone() -> bool:
        return not renewers()

    await eventually(gone, what="the renewer ended")


async def test_a_stream_longer_than_its_ttls_keeps_its_key_and_session_mark(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    config = base_config(
        fake.base_url,
        server={"port": 0, "lease_ttl_s": 60},
        sessions={"active_ttl_s": 30},  # the shorter TTL sets the pace: a renewal every 10 s
    )
    config["providers"]["alpha"].update(
        keys=["sk-alpha-1"], max_sessions=1, thread_protection="provider-ban"
    )
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 3600}  # a long, quiet reasoning
    router = await start_router(config, clock=clock, store=store)
    pool = router.runtime.pools["alpha"]
    sessions = router.runtime.sessions
    slot = pool.slot_name(pool.keys[0])
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    routing = routing_pb2.RoutingOptions(session_id="long")
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=request(), routing=routing))
    async for event in call:
        if event.HasField("chunk"):
            break
    await clock.pass_periods(9, 10.0)  # 90 s: three times the marks' TTL
    assert await store.held([slot]) == [1]  # the key's limits still count the stream
    assert list((await sessions.active("alpha")).values()) == [1]  # so does its session limit
    fake.state.release()
    events = [event async for event in call]
    assert events[-1].HasField("summary")

    async def ended() -> bool:
        await router.runtime.afterwork.drain()
        held = await store.held([slot])
        return held == [0] and not await sessions.active("alpha")

    await eventually(ended, what="the lease and the mark given back")
    await gone_after_a_period(clock, 10.0)


class GatedMarks(MemoryStateStore):
    """Marks a session in a round trip that, once `gate` is armed, answers when it opens."""

    completes_without_waiting = False

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.gate: asyncio.Event | None = None
        self.entering = asyncio.Event()

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        if self.gate is not None:
            self.entering.set()
            await self.gate.wait()
        return await super().enter(group, member, limit=limit, ttl_s=ttl_s)


async def test_a_stream_closed_during_a_renewal_leaves_the_renewed_mark(
    http: httpx.AsyncClient,
) -> None:
    clock = RenewerClock()
    store = GatedMarks(clock)
    runner, deployment = attempt_runner(
        http, store, clock, thread_protection="provider-ban", max_sessions=4
    )
    ctx = RequestContext("g", clock, session_id="s")
    _, _, stack = await runner.run(ctx, Plan([deployment]), _answer, record_success=False)
    await clock.pass_periods(0, 0.0)  # the renewer waits for its first period
    store.gate = asyncio.Event()
    clock.advance(deployment.pool.lease_ttl_s / 3)  # the renewal marks the session afresh...
    await store.entering.wait()
    closing = asyncio.create_task(stack.aclose())  # ... as the stream ends
    await asyncio.sleep(0)
    closing.cancel()  # and a stop cancels the closing too
    store.gate.set()
    with contextlib.suppress(asyncio.CancelledError):
        await closing
    assert await store.members("active:p") == {}  # neither mark left behind until its TTL
    assert await store.held([deployment.pool.slot_name(deployment.pool.keys[0])]) == [0]
    await gone_after_a_period(clock, deployment.pool.lease_ttl_s / 3)


async def test_a_stream_longer_than_its_ttls_keeps_its_clients_stream_slot(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A stream without a deadline took its client's slot for `lease_ttl_s`: a longer one lost
    # it mid-stream, and the client opened more than its `max_concurrent_streams`.
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    key = "sk-streaming-client-1"
    config = base_config(
        fake.base_url,
        server={"port": 0, "lease_ttl_s": 30},  # a renewal every 10 s
        auth={"clients": [client("app", key, max_concurrent_streams=1)]},
    )
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 3600}  # a long, quiet reasoning
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=request()), metadata=bearer(key))
    async for event in call:
        if event.HasField("chunk"):
            break
    await clock.pass_periods(9, 10.0)  # 90 s: three times the slot's TTL
    second = router.stub.ChatStream(pb.ChatStreamRequest(params=request()), metadata=bearer(key))
    refusing = asyncio.ensure_future(anext(aiter(second)))
    await advance_until_done(clock, 0.5, refusing, what="refused, after a wait for a slot")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await refusing
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    fake.state.release()
    assert [event async for event in call][-1].HasField("summary")

    async def given_back() -> bool:
        return await store.held(["client:app:streams"]) == [0]

    await eventually(given_back, what="the stream slot given back")
    await gone_after_a_period(clock, 10.0)


async def test_a_long_stream_its_client_leaves_gives_its_renewed_stream_slot_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Renewed past its TTL, the slot is the stream's until it ends: a caller that leaves gives
    # it back at once (the renewals stopped with the stream), not at the renewed TTL.
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    key = "sk-streaming-client-2"
    config = base_config(
        fake.base_url,
        server={"port": 0, "lease_ttl_s": 30},  # a renewal every 10 s
        auth={"clients": [client("app", key, max_concurrent_streams=1)]},
    )
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 3600}
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=request()), metadata=bearer(key))
    async for event in call:
        if event.HasField("chunk"):
            break
    await clock.pass_periods(6, 10.0)  # 60 s: renewed past twice its TTL
    call.cancel()

    async def given_back() -> bool:
        return await store.held(["client:app:streams"]) == [0]

    await eventually(given_back, what="the stream slot given back")
    await gone_after_a_period(clock, 10.0)  # nothing renews it again
    assert await store.held(["client:app:streams"]) == [0]
    fake.state.release()
    fake.state.clear_scenarios()
    again = router.stub.ChatStream(pb.ChatStreamRequest(params=request()), metadata=bearer(key))
    assert [event async for event in again][-1].HasField("summary")


async def test_a_call_longer_than_its_ttls_keeps_its_key_and_session_mark(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Not a stream: a long answer at once (a reasoning model's, up to `timeouts.total_s`, 600 s
    # by default) outlives TTLs set shorter than it, and the key's `max_in_flight` and the
    # provider's `max_sessions` counted it for nobody once they ended.
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    config = base_config(
        fake.base_url,
        server={"port": 0, "lease_ttl_s": 60},
        sessions={"active_ttl_s": 30},  # a renewal every 10 s
    )
    config["providers"]["alpha"].update(
        keys=["sk-alpha-1"], max_sessions=1, thread_protection="provider-ban"
    )
    router = await start_router(config, clock=clock, store=store)
    pool = router.runtime.pools["alpha"]
    sessions = router.runtime.sessions
    slot = pool.slot_name(pool.keys[0])
    fake.state.hold()
    routing = routing_pb2.RoutingOptions(session_id="long")
    call = asyncio.ensure_future(
        router.stub.Chat(pb.ChatRequest(params=request(), routing=routing))
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the call upstream")
    await clock.pass_periods(9, 10.0)  # 90 s: three times the mark's TTL
    assert await store.held([slot]) == [1]  # the key's limits still count the call
    assert list((await sessions.active("alpha")).values()) == [1]  # so does its session limit
    fake.state.release()
    assert (await call).HasField("completion")

    async def ended() -> bool:
        await router.runtime.afterwork.drain()
        held = await store.held([slot])
        return held == [0] and not await sessions.active("alpha")

    await eventually(ended, what="the lease and the mark given back")
    await gone_after_a_period(clock, 10.0)
