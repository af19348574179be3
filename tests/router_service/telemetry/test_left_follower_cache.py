"""A streaming call that followed an identical stream's flight and left before its first chunk
(its caller cancelled it; gRPC's own deadline, which may cancel it before the router's clock
says `Late`) was served nothing of the shared stream: the cache counts it a miss, as one whose
deadline passed on the router's clock and as a unary follower that left. It was counted a hit."""

from __future__ import annotations

import asyncio

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat_stream
from tests.router_service.cache.test_stream_flight_deadline import patient_router
from tests.router_service.cache.test_stream_flights import events, flying
from tests.router_service.telemetry.test_metrics import samples, value

pytestmark = pytest.mark.timeout(30)
_LOOKUPS, _STREAMED = "switchboard_cache_lookups_total", {"switchboard_stream": "true"}


async def test_a_follower_that_leaves_before_its_first_chunk_is_counted_a_miss(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    clock = ManualClock()
    router = await patient_router(fake, start_router, clock, MemoryStateStore(clock))
    fake.state.hold()
    leader = asyncio.create_task(events(router, chat_stream()))
    flight = await flying(router, fake)
    leaving = router.stub.ChatStream(chat_stream())
    reading = asyncio.create_task(leaving.read())
    patient = asyncio.create_task(events(router, chat_stream()))
    await flight.wait_until(lambda f: f.followers == 2)
    leaving.cancel()  # before its first chunk
    await flight.wait_until(lambda f: f.followers == 1)

    def looked(cache: str) -> float:
        found = samples(captured.prometheus_text())
        return value(found, _LOOKUPS, switchboard_cache=cache, **_STREAMED) or 0

    async def counted() -> bool:  # the one that left, as its call ended (the others read on)
        return looked("hit") + looked("miss") == 1

    await eventually(counted, what="the lookup of the one that left counted")
    assert (looked("hit"), looked("miss")) == (0, 1)
    fake.state.release()
    await asyncio.gather(leader, patient)
    reading.cancel()
    assert (looked("hit"), looked("miss")) == (1, 2)  # the patient one; the leader
