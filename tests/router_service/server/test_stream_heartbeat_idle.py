"""ChatStream's heartbeats say how long the stream was quiet as the proto says it
(`Heartbeat.idle_ms`: milliseconds since the last message on this stream), as ResumeResponse's
and a hidden-reasoning stream's do: each after `streams.heartbeat_s` without a message says that
interval. The upstream guard's counted from the last chunk instead, so the second beat of one
quiet spell said twice the interval. Nothing sleeps: the router's ManualClock and the loop's
clock (the guard's wake-up timer) are moved on together."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.profiles import BY_KIND, conformance_config
from tests.conftest import StartRouter, base_config
from tests.loop_clock import move_loop_clock
from tests.router_service.auth.helpers import chat_stream

__all__ = ["move_loop_clock"]  # the fixture, used here

pytestmark = pytest.mark.timeout(30)

BEAT_S = 5.0


async def test_each_heartbeat_of_a_quiet_spell_says_the_time_since_the_last_message(
    fake: FakeUpstream, start_router: StartRouter, move_loop_clock: Callable[[float], None]
) -> None:
    clock = ManualClock()
    config = base_config(fake.base_url, streams={"heartbeat_s": BEAT_S})
    config["providers"]["alpha"]["timeouts"].update(stall_s=600.0, first_chunk_s=600.0)
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    messages = aiter(router.stub.ChatStream(chat_stream(text="one two three four")))
    kinds = [(await anext(messages)).WhichOneof("event") for _ in range(3)]
    assert kinds == ["route", "chunk", "chunk"]
    await fake.state.wait_for(lambda: fake.state.held == 1)
    beats = []
    for _ in range(2):
        clock.advance(BEAT_S)
        move_loop_clock(BEAT_S)
        message: pb.ChatStreamResponse = await anext(messages)
        assert message.WhichOneof("event") == "heartbeat"
        beats.append(message.heartbeat.idle_ms)
    # The second beat of the quiet spell says one interval (it said two: counted from the last
    # chunk). The first says one too, unless the guard took the caller's acceptance of chunk 2
    # (its "last message") only after the clocks moved: it races the test's advance (the test
    # reads chunk 2 as the router's task resumes), and then the first beat says 0.
    assert beats[1] == BEAT_S * 1000
    assert beats[0] in (0, BEAT_S * 1000)
    fake.state.release()
    rest = [message.WhichOneof("event") async for message in messages]
    assert rest[-1] == "summary"


async def test_a_beat_after_batches_the_caller_was_not_sent_counts_from_its_last_message(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An answer's guardrail holds back its last 128 characters (a find may still grow there):
    a batch it holds whole sends the caller nothing (a Gemini deployment's chunks carry no
    other field). The caller heard no beat while such batches came (each started the guard's
    count again), and then one saying the time since the last batch, not its last message."""
    clock = ManualClock()
    beat_s = 60.0  # the guard's own beat (a real-time wait) far off
    config = conformance_config(fake, BY_KIND["gemini"], streams={"heartbeat_s": beat_s})
    config["guardrails"] = [
        {"name": "pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]}
    ]
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(stepped_chunks=8))  # each event after the first: a release
    call = router.stub.ChatStream(chat_stream(model="solo", text="one two three"))
    messages = aiter(call)
    await fake.state.wait_for(lambda: fake.state.held == 1)
    fake.state.release()  # the first words: the stream commits, the words held
    assert (await anext(messages)).WhichOneof("event") == "route"
    assert (await anext(messages)).WhichOneof("event") == "chunk"  # the role: the last news
    for _ in range(2):  # more words, 40 s apart, each held: the caller is sent nothing
        await fake.state.wait_for(lambda: fake.state.held == 1)
        clock.advance(40.0)
        fake.state.release()
    beat: pb.ChatStreamResponse = await anext(messages)  # before: none, until the end
    assert beat.WhichOneof("event") == "heartbeat", beat
    assert beat.heartbeat.idle_ms == 80_000
    call.cancel()
    fake.state.release()
