"""Keep-alives restart a stream's windows, but not for ever: a server that pings on while its
model is stuck (sse-starlette's `: ping` every 15 s, whatever its generator does) still times
out, at the deployment's `total_s` (the longest a non-streaming answer is waited for), before its
first token as after it. Otherwise only the caller's deadline ends it (none: never), the lease
held all the while, and no other deployment is tried."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import advance_until_done, eventually

pytestmark = pytest.mark.timeout(30)


def _pinging(after_chunks: int) -> Scenario:
    """Pings every 20 ms once `after_chunks` events are sent, and nothing else."""
    return Scenario(
        stall_after_chunks=after_chunks, between_events=": ping\n\n", chunk_interval_ms=20
    )


def _request() -> pb.ChatStreamRequest:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    return pb.ChatStreamRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))


def _config(fake: FakeUpstream, **timeouts: float) -> dict[str, Any]:
    config: dict[str, Any] = base_config(fake.base_url)
    config["providers"]["alpha"]["timeouts"] = timeouts
    return config


async def test_pings_before_the_first_token_end_at_total_s_and_fail_over(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """On the router's clock: each step is within the 0.2 s window, and a ping after it moves
    the window on from there, never past `total_s` (0.6 s) from the attempt's start."""
    clock = ManualClock()
    fake.state.set_scenario(_pinging(0), model="model-a")
    router = await start_router(_config(fake, first_chunk_s=0.2, total_s=0.6), clock=clock)

    began = clock.monotonic()
    streaming = asyncio.ensure_future(_read(router))
    await fake.state.wait_for(lambda: _outcomes(fake) == ["stalled"])  # pinging now
    [window] = clock.windows
    for _ in range(3):
        clock.advance(0.15)
        moved_to = min(clock.monotonic() + 0.2, began + 0.6)

        async def moved(to: float = moved_to) -> bool:
            return window.when() == pytest.approx(to)

        await eventually(moved, what=f"a ping moved the window to {moved_to - began:.2f}")
    assert not streaming.done()
    clock.advance(0.6 - (clock.monotonic() - began) + 0.01)  # past total_s: pings go on
    events = await streaming

    assert [e for e in events if e.HasField("error")] == []
    route = events[0].route
    assert route.deployment == "beta/model-b"
    assert route.attempts[0].outcome == routing_pb2.OUTCOME_FIRST_CHUNK_TIMEOUT
    assert await router.leases_held() == 0


async def test_pings_after_the_first_token_end_at_total_s(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """On the router's clock, moved 0.1 s at a time (within the 0.2 s stall window) once the
    upstream only pings: a ping starts the window again, yet never later than lets it end 0.6 s
    (`total_s`) after the last chunk; had each ping started it anew, the pings (every 20 ms)
    would keep it open for ever."""
    clock = ManualClock()
    fake.state.set_scenario(_pinging(2), model="model-a")
    router = await start_router(_config(fake, stall_s=0.2, total_s=0.6), clock=clock)

    streaming = asyncio.ensure_future(_read(router))
    await fake.state.wait_for(lambda: _outcomes(fake) == ["stalled"])  # pinging now
    await advance_until_done(clock, 0.1, streaming, what="the stall window ended the stream")
    events = streaming.result()

    [failed] = [e.error for e in events if e.HasField("error")]
    assert failed.code == "stalled", failed
    assert await router.leases_held() == 0


async def _read(router: RouterHandle) -> list[pb.ChatStreamResponse]:
    return [event async for event in router.stub.ChatStream(_request(), timeout=20)]


def _outcomes(fake: FakeUpstream) -> list[str | None]:
    return [call.outcome for call in fake.state.calls(model="model-a")]
