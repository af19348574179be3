"""A call whose gRPC deadline passes: its caller sees DEADLINE_EXCEEDED, and so does what the
router records of it (the SERVER span's code and `error.type`, the request's outcome in
`switchboard.requests`), not a CANCELLED "cancelled by the caller" — whichever fired first,
the router's own timer set by the deadline or gRPC's cancellation of the handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from opentelemetry.trace import StatusCode

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.telemetry.spans import attrs, ended_request
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
