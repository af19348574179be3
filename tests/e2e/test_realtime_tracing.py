"""A Realtime session's trace, as every other route's: the caller's W3C `traceparent` on the
WebSocket upgrade request is the parent of the edge's SERVER span (`GET /v1/realtime`, from the
upgrade to the close), whose child is the router's span of the session (over the wire the
Realtime call's SERVER span; in one process the edge's span is the request's), whose child is
the upstream attempt's."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
import websockets
from opentelemetry.trace import SpanKind, StatusCode

from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_sdk import config
from tests.e2e.test_tracing import child
from tests.router_service.telemetry.spans import attrs, ended

pytestmark = pytest.mark.timeout(30)

SESSION = "GET /v1/realtime"
REALTIME = "switchboard.v1.RouterService/Realtime"
ATTEMPT = "realtime gpt-realtime"
TRACE_ID, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


@pytest.fixture
def captured() -> Iterator[TelemetryCapture]:
    with TelemetryCapture() as capture:
        yield capture


async def one_response(edge_url: str, headers: dict[str, str]) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{edge_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        async with sdk.realtime.connect(model="voice", extra_headers=headers) as connection:
            await connection.response.create()
            async for event in connection:
                if event.type == "response.done":
                    break


@pytest.mark.parametrize("in_process", [False, True], ids=["grpc", "in-process"])
async def test_a_session_joins_the_callers_trace(
    in_process: bool,
    captured: TelemetryCapture,
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
) -> None:
    edge = await start_edge(await start_router(config(fake)), in_process=in_process)

    await one_response(edge.base_url, {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})

    trace = await ended(captured, SESSION, ATTEMPT, *(() if in_process else (REALTIME,)))
    assert trace.trace_ids() == {int(TRACE_ID, 16)}
    session = trace.one(SESSION)
    assert session.kind is SpanKind.SERVER and session.parent is not None
    assert session.parent.span_id == int(CALLER_SPAN, 16) and session.parent.is_remote
    got = attrs(session)
    assert (got["http.route"], got["http.response.status_code"]) == ("/v1/realtime", 101)
    assert got["url.scheme"] == "ws"
    # The session's request span: over the wire the call's SERVER span, in one process the
    # edge's; the attempt is its child.
    request = session if in_process else child(trace, session, REALTIME, SpanKind.SERVER)
    assert attrs(request)["gen_ai.operation.name"] == "realtime"
    assert attrs(request)["gen_ai.request.model"] == "voice"
    child(trace, request, ATTEMPT, SpanKind.CLIENT)
    # The caller closed it: a session that ended well, no failed call (a CLIENT span) of the edge.
    assert attrs(request)["switchboard.outcome"] == "OK"
    assert request.status.status_code is not StatusCode.ERROR
    assert [s.name for s in trace.spans if s.kind is SpanKind.CLIENT] == [ATTEMPT]


async def test_a_refused_handshake_is_the_sessions_span_with_its_status(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    edge = await start_edge(await start_router(config(fake)))
    headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        with pytest.raises(websockets.InvalidStatus):
            async with sdk.realtime.connect(model="no-such-model", extra_headers=headers):
                pass

    trace = await ended(captured, SESSION, REALTIME)
    session = trace.one(SESSION)
    assert session.parent is not None and session.parent.span_id == int(CALLER_SPAN, 16)
    assert attrs(session)["http.response.status_code"] == 404
    server = child(trace, session, REALTIME, SpanKind.SERVER)
    assert attrs(server)["rpc.grpc.status_code"] == 5  # NOT_FOUND


async def test_a_websocket_to_no_route_is_a_span_with_its_403(
    captured: TelemetryCapture, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A handshake the edge refuses by closing before it accepts (no WebSocket route there:
    the server answers 403) says that status as a denial's does."""
    edge = await start_edge(await start_router(config(fake)))
    headers = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    url = f"ws://127.0.0.1:{edge.port}/v1/nowhere"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403

    trace = await ended(captured, "GET")
    session = trace.one("GET")
    assert session.parent is not None and session.parent.span_id == int(CALLER_SPAN, 16)
    assert attrs(session)["http.response.status_code"] == 403
