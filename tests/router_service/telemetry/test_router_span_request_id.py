"""The caller's `x-request-id` (which the edge forwards, and echoes) on the router's gRPC SERVER
span, under the edge's SERVER span's attribute: one query finds a quoted id's spans on both
sides. Only an id the edge would forward (at most 1024 characters); none when none was sent."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.telemetry.spans import attrs, ended
from tests.router_service.telemetry.test_router_spans import SERVER_CHAT, params

HEADER = "http.request.header.x-request-id"  # the edge's (http_edge/_server_telemetry.py)


@pytest.mark.parametrize(
    ("sent", "found"),
    [("req-quote-me", ("req-quote-me",)), (None, None), ("x" * 1025, None)],
)
async def test_the_callers_request_id_is_on_the_routers_server_span(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    sent: str | None,
    found: tuple[str, ...] | None,
) -> None:
    router = await start_router(base_config(fake.base_url))
    metadata = () if sent is None else (("x-request-id", sent),)
    await router.stub.Chat(pb.ChatRequest(params=params()), metadata=metadata)
    server = (await ended(captured, SERVER_CHAT)).one(SERVER_CHAT)
    assert attrs(server).get(HEADER) == found


async def test_a_failed_calls_server_span_has_it_too(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.server_error(502))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(
            pb.ChatRequest(params=params()), metadata=(("x-request-id", "req-failed"),)
        )
    server = (await ended(captured, SERVER_CHAT)).one(SERVER_CHAT)
    assert attrs(server).get(HEADER) == ("req-failed",)
