"""A caller that leaves in the last writes of an attempt that succeeded (the stream's sticky
session, the deployment's statistics): everything the attempt holds is given back — its key
lease, its session mark, a stream's renewals and its upstream call — not held until a TTL (a
stream's renewed for good). The statistics that write was taking (its result, a failure's, and
every other request's since the last write) are written once all the same: the write goes on
without the caller, as Redis runs a write whose reply nobody waits for."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(20)


class CutWrites(MemoryStateStore):
    """A store whose armed write waits until its caller is cancelled: a Redis round trip the
    caller leaves during (one: the next write goes through), or until `released` (a slow one)."""

    def __init__(self, clock: ManualClock, write: str) -> None:
        super().__init__(clock)
        self.write = write  # "sticky" (a session's sticky deployment) or "stats"
        self.armed = False
        self.reached = asyncio.Event()
        self.cut = asyncio.Event()
        self.released = asyncio.Event()

    async def _held(self) -> None:
        if not self.armed:
            return
        self.reached.set()
        try:
            await self.released.wait()
        except asyncio.CancelledError:
            self.armed = False
            self.cut.set()
            raise

    async def set_value(self, name: str, value: str, ttl_s: float) -> None:
        if self.write == "sticky" and name.startswith("sticky:"):
            await self._held()
        await super().set_value(name, value, ttl_s)

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        if self.write == "stats":
            await self._held()
        return await super().add_to_bucket(name, bucket, counts, ttl_s, at=at)


def _request() -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return chat_pb2.ChatParams(model="chain", messages=[message])


async def _left_during(store: CutWrites, call: Any) -> None:
    """Cancel `call` once the router is in the armed write, and wait until the write is cut."""
    await asyncio.wait_for(store.reached.wait(), 10)
    call.cancel()
    await asyncio.wait_for(store.cut.wait(), 10)


async def _left_during_statistics(
    store: CutWrites, router: RouterHandle, call: Any, reading: Any
) -> None:
    """Cancel `call` once the router writes its statistics, and let the write end once the
    caller is gone and all it held given back (`reading`: what awaits the call's answer)."""
    await asyncio.wait_for(store.reached.wait(), 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):  # the caller's own cancel
        await reading
    await _all_given_back(router)
    store.released.set()


async def _all_given_back(router: RouterHandle) -> None:
    async def zero() -> bool:
        return await router.leases_held() == 0

    await eventually(zero, what="the key lease given back")
    renewer = router.runtime.runner.renewer
    assert not renewer._holds, "a stream's lease and mark still renewed"


async def test_a_stream_left_as_its_session_sticks(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    store = CutWrites(clock, "sticky")
    router = await start_router(base_config(fake.base_url), clock=clock, store=store)
    fake.state.set_scenario(Scenario(held_after_chunks=2))  # its answer begun, then held
    store.armed = True
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=_request()))
    reading = asyncio.ensure_future(call.read())
    await _left_during(store, call)
    with pytest.raises(asyncio.CancelledError):
        await reading
    await _all_given_back(router)
    [upstream] = fake.state.calls()

    async def closed() -> bool:
        return upstream.client_disconnected

    await eventually(closed, what="the upstream call closed")


async def test_a_call_left_as_its_success_is_counted(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    store = CutWrites(clock, "stats")
    config = base_config(fake.base_url, routing={"stats_flush_s": 0})  # each result written
    router = await start_router(config, clock=clock, store=store)
    store.armed = True
    call = router.stub.Chat(pb.ChatRequest(params=_request()))
    await _left_during_statistics(store, router, call, call)
    await eventually(lambda: _counted(store, "s"), what="the success in the statistics")
    await router.runtime.stats.aclose()  # all written: once
    assert await _counted(store, "s")


async def _counted(store: CutWrites, field: str) -> bool:
    """Whether alpha/model-a's statistics hold one result of `field` ("s", "f")."""
    [buckets] = await store.read_buckets(["stats:alpha/model-a"])
    return sum(fields.get(field, 0.0) for fields in buckets.values()) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_left_as_a_failure_is_counted_loses_no_statistics(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    clock = ManualClock()
    store = CutWrites(clock, "stats")
    config = base_config(fake.base_url, routing={"stats_flush_s": 0})
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    store.armed = True
    if stream:
        call: Any = router.stub.ChatStream(pb.ChatStreamRequest(params=_request()))
    else:
        call = router.stub.Chat(pb.ChatRequest(params=_request()))
    reading = asyncio.ensure_future(call.read() if stream else call)
    await _left_during_statistics(store, router, call, reading)
    await eventually(lambda: _counted(store, "f"), what="alpha/model-a's failure counted")
    await router.runtime.stats.aclose()  # all written: once
    assert await _counted(store, "f")
