"""A ChatStream whose reasoning is hidden (`reasoning.exclude`) says in each heartbeat the time
since the caller's last message (`Heartbeat.idle_ms`), the guard's beats for a quiet upstream
included: the beat for hidden thinking that follows one of them counts from it, not from the
last chunk the caller saw (a beat a second after another said it had been quiet 16 s). The
router's ManualClock and the loop's clock (the guard's wake-up timer) move together."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.test_reasoning_exclude import ANSWER, hidden_params
from tests.e2e.test_reasoning_sdk import config
from tests.loop_clock import move_loop_clock

__all__ = ["move_loop_clock"]  # the fixture, used here

pytestmark = pytest.mark.timeout(30)

BEAT_S = 15.0  # streams.heartbeat_s's default


async def test_a_quiet_beat_after_the_guards_beat_counts_from_it(
    fake: FakeUpstream, start_router: StartRouter, move_loop_clock: Callable[[float], None]
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake), clock=clock)
    # More words than the guard's read-ahead (32): the batch after the hold is all reasoning.
    thinking = " ".join(f"step{i}" for i in range(40))
    fake.state.set_scenario(Scenario(reasoning=thinking, content=ANSWER, held_after_chunks=3))
    params = hidden_params()
    events = aiter(router.stub.ChatStream(rs.ChatStreamRequest(params=params)))
    await fake.state.wait_for(lambda: fake.state.held == 1)
    clock.advance(BEAT_S + 1)  # an interval of hidden thinking commits the stream
    assert (await anext(events)).WhichOneof("event") == "route"
    assert (await anext(events)).WhichOneof("event") == "chunk"  # the role, no reasoning
    clock.advance(BEAT_S)  # an interval of silence: the guard's beat
    move_loop_clock(BEAT_S)
    beat = await anext(events)
    assert beat.heartbeat.idle_ms == BEAT_S * 1000
    clock.advance(1.0)  # hidden thinking a second later: the caller heard from us a second ago
    fake.state.release()
    rest = [event async for event in events]
    said = "".join(c.delta.text for e in rest if e.HasField("chunk") for c in e.chunk.choices)
    assert said == ANSWER
    assert [e.heartbeat.idle_ms for e in rest if e.HasField("heartbeat")] == []
