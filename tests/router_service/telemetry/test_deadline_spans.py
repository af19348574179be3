"""A call whose gRPC deadline passes: its caller sees DEADLINE_EXCEEDED, and so does what the
router records of it (the SERVER span's code and `error.type`, the request's outcome in
`switchboard.requests`), not a CANCELLED "cancelled by the caller" — whichever fired first,
the router's own timer set by the deadline or gRPC's cancellation of the handler."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from opentelemetry.trace import StatusCode

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_realtime_calls_usage import METERED, OFFER, RESPONSE_EVENTS
from tests.e2e.test_realtime_calls_usage import config as calls_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer
from tests.router_service.telemetry.spans import Trace, attrs, ended_request, requests
from tests.router_service.telemetry.test_metrics import ask, samples, value

Call = Callable[[RouterHandle, FakeUpstream], Awaitable[None]]


async def _unary(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(stall_before_first_byte=True))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(pb.ChatRequest(params=ask()), timeout=1)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def _mid_stream(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=2))  # held until it is gone
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=ask()), timeout=1)
    kinds: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for event in call:
            kinds.append(event.WhichOneof("event"))
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "chunk" in kinds  # it passed mid-stream


@pytest.mark.parametrize("call", [_unary, _mid_stream], ids=["unary", "mid-stream"])
async def test_a_call_past_its_deadline_says_deadline_exceeded(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture, call: Call
) -> None:
    """The (real) deadline is long enough that the call reaches the held upstream before it
    however loaded the machine: it passes while the upstream is silent."""
    router = await start_router(base_config(fake.base_url))

    await call(router, fake)

    request = await ended_request(captured, "chain")  # the call's SERVER span
    said = attrs(request)
    assert said["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert said["switchboard.outcome"] == said["error.type"] == "DEADLINE_EXCEEDED"
    assert request.status.status_code is StatusCode.ERROR
    assert "cancelled by the caller" not in (request.status.description or "")
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", switchboard_outcome="DEADLINE_EXCEEDED") == 1
    assert value(found, "switchboard_requests_total", switchboard_outcome="CANCELLED") == 0


async def test_a_call_watch_ended_past_its_offers_deadline_is_no_deadline_exceeded(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """A WebRTC call's watch outlives the CreateRealtimeCall that placed it (the edge gives that
    call `request_timeout_s`): a router stop that ends it after that deadline is no deadline of
    any caller's, in `switchboard.requests` (whose error ratio counts DEADLINE_EXCEEDED) as on
    its span, however long the call lived."""
    clock = ManualClock(1_700_000_000.0)
    router = await start_router(calls_config(fake), clock=clock)
    offer = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    made = await router.stub.CreateRealtimeCall(offer, metadata=bearer(METERED), timeout=30)

    def answered() -> bool:  # the sideband attached and saw its response: the watch runs
        return any(
            call.query.get("call_id") == made.call_id and call.chunks_sent == RESPONSE_EVENTS
            for call in fake.state.calls(path="/v1/realtime")
        )

    await fake.state.wait_for(answered, what="the call's sideband")
    clock.advance(60)  # a minute on: the offer's deadline long passed, the call goes on
    assert len(router.server.call_watches) == 1
    await router.server.shutdown(grace=0)

    points = [labels for labels, _ in captured.points("switchboard.requests")]
    realtime = [p for p in points if p.get("gen_ai.operation.name") == "realtime"]
    assert [p["switchboard.outcome"] for p in realtime] == ["CANCELLED"]
    watch = next(s for s in captured.spans() if s.name == "realtime voice")
    assert "deadline" not in (watch.status.description or "")


async def test_a_call_cancelled_by_its_deadline_before_any_timer_says_deadline_exceeded(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """A unary call waiting where no timer of the router's runs (another identical call's cache
    flight, which it follows) is ended by gRPC's cancellation alone when its deadline passes:
    that too is DEADLINE_EXCEEDED, not its caller leaving (the other test's unary call may
    end by the router's own timer first). Its caller's deadline passes before the router's
    (grpc-timeout is sent rounded up: 10.1 s for 10.05 s; the router counts from reading the
    call), so the cancellation comes with time left to the router, more than the
    `DEADLINE_SLACK_S` of its own timers: here the router's (manual) clock stands at most
    50 ms before its deadline (the call's 1 s less the way here, less 0.95 s) when it comes."""
    clock = ManualClock(1_700_000_000.0)
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}), clock=clock)
    fake.state.hold()
    leader = asyncio.ensure_future(router.stub.Chat(pb.ChatRequest(params=ask()), timeout=60))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first call upstream")
    follower = asyncio.ensure_future(router.stub.Chat(pb.ChatRequest(params=ask()), timeout=1))

    async def following() -> bool:
        return router.runtime.cache.flights.following == 1

    await eventually(following, what="the second call following the first")
    clock.advance(0.95)  # the router's deadline is now (its time remaining, ≤ 1 s) − 0.95 s
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await follower
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert router.runtime.cache.flights.open == 1  # it waited for the first, never asked itself

    async def left() -> bool:
        return router.runtime.cache.flights.following == 0

    await eventually(left, what="the follower's handler cancelled")
    fake.state.release()
    await leader

    async def both_ended() -> bool:
        return len(requests(Trace(captured.spans()), "chain")) == 2

    await eventually(both_ended, what="both requests ended")
    said = [attrs(span) for span in requests(Trace(captured.spans()), "chain")]
    assert [s["switchboard.outcome"] for s in said] == ["OK", "DEADLINE_EXCEEDED"]
    assert said[1]["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert len(fake.state.calls()) == 1
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", switchboard_outcome="DEADLINE_EXCEEDED") == 1
    assert value(found, "switchboard_requests_total", switchboard_outcome="CANCELLED") == 0


async def test_a_caller_that_leaves_with_time_left_is_cancelled(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """A caller with a deadline that leaves a stream well before it: CANCELLED, as it was."""
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=2))
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=ask()), timeout=60)
    async for event in call:
        if event.WhichOneof("event") == "chunk":
            break
    call.cancel()

    said = attrs(await ended_request(captured, "chain"))
    assert said["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert said["switchboard.outcome"] == said["error.type"] == "CANCELLED"
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", switchboard_outcome="CANCELLED") == 1


@pytest.mark.parametrize(
    ("left_s", "outcome"), [(3.0, "CANCELLED"), (0.5, "DEADLINE_EXCEEDED")], ids=["left", "due"]
)
async def test_a_cancel_near_a_long_deadline_is_read_by_grpcs_rounding_of_it(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    left_s: float,
    outcome: str,
) -> None:
    """The edge gives its calls 600 s (`request_timeout_s`), which gRPC sends rounded up to three
    significant digits (whole seconds): its deadline passes under a second (and the way here)
    before the router's. A caller that leaves 3 s before the router's deadline left (CANCELLED,
    out of the error ratio's DEADLINE_EXCEEDED); a cancellation that comes 0.5 s before it was
    the deadline's. The router's clock is moved, the caller cancels: no waiting on a deadline."""
    clock = ManualClock(1_700_000_000.0)
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["timeouts"].update(stall_s=3600.0)
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=2))
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=ask()), timeout=600)
    async for event in call:
        if event.WhichOneof("event") == "chunk":
            break
    clock.advance(600 - left_s)  # on the router's clock, that close to its deadline
    call.cancel()

    said = attrs(await ended_request(captured, "chain"))
    assert said["switchboard.outcome"] == said["error.type"] == outcome
    assert said["rpc.grpc.status_code"] == getattr(grpc.StatusCode, outcome).value[0]
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_requests_total", switchboard_outcome=outcome) == 1
