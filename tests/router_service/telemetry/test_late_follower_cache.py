"""A streaming call that followed an identical stream's flight and gave up at its own deadline
before its first chunk (`Late`: DEADLINE_EXCEEDED) was served nothing of the shared stream: the
cache counts it a miss (as a unary follower whose deadline passed), in
`switchboard.cache.lookups` and on its span. It was counted a hit."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import chat_stream
from tests.router_service.cache.test_stream_flight_deadline import patient_router
from tests.router_service.cache.test_stream_flights import events, flying
from tests.router_service.telemetry.test_metrics import samples, value

pytestmark = pytest.mark.timeout(30)


async def test_a_follower_late_before_its_first_chunk_is_counted_a_miss(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    clock = ManualClock()
    router = await patient_router(fake, start_router, clock, MemoryStateStore(clock))
    fake.state.hold()
    leader = asyncio.create_task(events(router, chat_stream()))  # no deadline
    flight = await flying(router, fake)
    call = router.stub.ChatStream(chat_stream(), timeout=60)
    hurried = asyncio.create_task(_drain(call))
    patient = asyncio.create_task(events(router, chat_stream()))
    await flight.wait_until(lambda f: f.followers == 2)
    clock.advance(61)  # past the hurried one's deadline (on the router's clock)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await asyncio.wait_for(hurried, 10)
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    fake.state.release()
    await asyncio.gather(leader, patient)

    found = samples(captured.prometheus_text())
    lookups, streamed = "switchboard_cache_lookups_total", {"switchboard_stream": "true"}
    assert value(found, lookups, switchboard_cache="hit", **streamed) == 1  # the patient one
    assert value(found, lookups, switchboard_cache="miss", **streamed) == 2  # it was a hit


async def _drain(call: grpc.aio.UnaryStreamCall) -> None:
    async for _ in call:
        pass
