"""A WebRTC call counts as a WebSocket session does: the router attaches the call's sideband
(`wss://<upstream>/v1/realtime?call_id=`, with the key that made the call) and holds one of
the client's `max_concurrent_streams` while the call lives (a second call is 429 until the
first is hung up); the usage of the call's `response.done`s goes to the client's tpm when it
ends (the next offer's `x-ratelimit-remaining-tokens`). The fake upstream's sideband answers
one response as soon as it is attached: "Hello from the fake realtime model", 10 + 6 tokens."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import httpx
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import CallRecord, FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.helpers import eventually
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import bearer, client

pytestmark = pytest.mark.timeout(30)

METERED = "sk-metered-calls"
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
RESPONSE_EVENTS = 1 + 1 + 6 + 1  # session.created, response.created, a delta a word, done
TOKENS = 16


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    sections["models"]["voice"] = {"deployments": [realtime]}
    metered = client("metered", METERED, tpm=1000, max_concurrent_streams=1)
    sections["auth"] = {"clients": [metered]}
    return sections


async def offer(http: httpx.AsyncClient) -> httpx.Response:
    return await http.post(
        "/v1/realtime/calls?model=voice",
        content=OFFER,
        headers={"authorization": f"Bearer {METERED}", "content-type": "application/sdp"},
    )


async def test_a_call_holds_a_stream_and_its_usage_counts_when_it_ends(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    router: RouterHandle = await start_router(config(fake))
    edge: Edge = await start_edge(router)
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        first = await offer(http)
        assert first.status_code == 201, first.text
        assert first.headers["x-ratelimit-remaining-tokens"] == "1000"
        call_id = first.headers["location"].rsplit("/", 1)[-1]

        def answered() -> CallRecord | None:  # the sideband attached and saw its response
            for call in fake.state.calls(path="/v1/realtime"):
                if call.query.get("call_id") == call_id and call.chunks_sent == RESPONSE_EVENTS:
                    return call
            return None

        sideband = await fake.state.wait_for(answered, what="the call's sideband")
        made = fake.state.last(path="/v1/realtime/calls")
        assert made is not None and sideband.key == made.key  # the key that made the call

        busy = await offer(http)  # the call holds the client's one stream
        assert busy.status_code == 429, busy.text

        hung = await http.post(
            f"/v1/realtime/calls/{call_id}/hangup",
            headers={"authorization": f"Bearer {METERED}"},
        )
        assert hung.status_code == 200
        await router.server.call_watches.idle()  # the sideband closed: the call settled

        again = await offer(http)
        assert again.status_code == 201, again.text
        assert again.headers["x-ratelimit-remaining-tokens"] == str(1000 - TOKENS)


async def sideband_answered(fake: FakeUpstream, call_id: str) -> None:
    """Until the call's sideband attached and saw its one response (its usage counted)."""

    def answered() -> bool:
        return any(
            call.query.get("call_id") == call_id and call.chunks_sent == RESPONSE_EVENTS
            for call in fake.state.calls(path="/v1/realtime")
        )

    await fake.state.wait_for(answered, what="the call's sideband")


async def test_a_stopping_router_settles_its_calls(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A router that stops ends its calls' watches: what they counted reaches the client's tpm
    and the stream slot is given back, as the next router on the same store sees."""
    clock = ManualClock(1_700_000_000.0)
    store = MemoryStateStore(clock)
    one = await start_router(config(fake), clock=clock, store=store)
    offer_rpc = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    made = await one.stub.CreateRealtimeCall(offer_rpc, metadata=bearer(METERED))
    await sideband_answered(fake, made.call_id)
    await one.server.shutdown(grace=0)
    assert not len(one.server.call_watches)

    two = await start_router(config(fake), clock=clock, store=store)
    again = await two.stub.CreateRealtimeCall(offer_rpc, metadata=bearer(METERED))
    assert again.route.rate_limit.remaining_tokens == 1000 - TOKENS


async def test_a_call_answered_while_the_router_stops_is_not_left_watched(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An offer upstream when the stop ends the watches is still answered (the stop serves the
    calls under way), but not watched: a watch started then would outlive the router (its
    sideband open, its stream slot renewed on a closed store)."""
    clock = ManualClock(1_700_000_000.0)
    store = MemoryStateStore(clock)
    one = await start_router(config(fake), clock=clock, store=store)
    offer_rpc = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    fake.state.hold()
    placing = asyncio.ensure_future(
        one.stub.CreateRealtimeCall(offer_rpc, metadata=bearer(METERED))
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the offer upstream")
    stopping = asyncio.create_task(one.server.shutdown(grace=60))

    async def watches_ended() -> bool:
        return one.server.call_watches.stopping

    await eventually(watches_ended, what="the stop ending the watches")
    fake.state.release()
    made = await placing
    assert made.call_id.startswith("rtc_fake_")
    async with asyncio.timeout(10):
        await stopping
    assert not len(one.server.call_watches)

    two = await start_router(config(fake), clock=clock, store=store)
    again = await two.stub.CreateRealtimeCall(offer_rpc, metadata=bearer(METERED))
    assert again.call_id != made.call_id  # the client's one stream slot was given back


async def sideband_meeting(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    scenario: Scenario,
) -> tuple[pb.CreateRealtimeCallResponse, list[dict[str, object]]]:
    """A call placed while the fake holds its offer, its sideband then meeting `scenario`: the
    call, and the `switchboard.requests` labels of operation `realtime` once its watch ended."""
    caplog.set_level(logging.WARNING, logger="switchboard.router")
    with TelemetryCapture(tracing=False) as captured:
        router = await start_router(config(fake))
        fake.state.hold()  # the offer is upstream, its scenario taken: the sideband's next
        placing = asyncio.ensure_future(
            router.stub.CreateRealtimeCall(
                pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER), metadata=bearer(METERED)
            )
        )
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the offer upstream")
        fake.state.set_scenario(scenario)
        fake.state.release()
        made = await placing
        await router.server.call_watches.idle()
        points = [labels for labels, _ in captured.points("switchboard.requests")]
    return made, [p for p in points if p.get("gen_ai.operation.name") == "realtime"]


async def test_a_sideband_refused_is_a_warning_and_a_failed_realtime_request(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The upstream refuses the sideband's handshake: the call goes on uncounted, which the
    operator hears of (a warning naming the deployment and the call, never the key) and can
    alert on (`switchboard.requests` of operation `realtime`, outcome CONNECT_FAILED)."""
    made, realtime = await sideband_meeting(
        fake, start_router, caplog, Scenario(status=500, times=1)
    )
    assert [p["switchboard.outcome"] for p in realtime] == ["CONNECT_FAILED"]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "sideband" in r.message]
    assert len(warned) == 1
    assert made.call_id in warned[0].message and "WSServerHandshakeError 500" in warned[0].message
    assert "alpha" in warned[0].message  # the deployment
    key = fake.state.last(path="/v1/realtime/calls")
    assert key is not None and key.key not in caplog.text


async def test_a_sideband_dropped_once_attached_is_a_warning_and_an_upstream_error(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The sideband attached, then its connection dropped (no close handshake): aiohttp ends
    the socket's iteration without raising, yet the call goes on uncounted, which the operator
    hears of as a refused one is (outcome UPSTREAM_ERROR)."""
    made, realtime = await sideband_meeting(
        fake, start_router, caplog, Scenario(reset_after_chunks=2, times=1)
    )
    assert [p["switchboard.outcome"] for p in realtime] == ["UPSTREAM_ERROR"]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "sideband" in r.message]
    assert len(warned) == 1 and made.call_id in warned[0].message


async def _hung_up_before_the_sideband(
    router: RouterHandle, fake: FakeUpstream, refused: Scenario | None = None
) -> str:
    """The id of a call hung up through `router` while its sideband waits before its
    handshake (the upstream refusing the hangup with `refused`); the sideband let go, the
    watch ended."""
    fake.state.hold_sidebands()
    offer_rpc = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    made = await router.stub.CreateRealtimeCall(offer_rpc, metadata=bearer(METERED))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the sideband held")
    hangup = pb.HangupRealtimeCallRequest(call_id=made.call_id)
    if refused is None:
        await router.stub.HangupRealtimeCall(hangup, metadata=bearer(METERED))
    else:
        fake.state.set_scenario(refused)
        with pytest.raises(grpc.aio.AioRpcError):
            await router.stub.HangupRealtimeCall(hangup, metadata=bearer(METERED))
        fake.state.set_scenario(Scenario(status=500, times=1))  # the sideband's, refused
    fake.state.release()
    await router.server.call_watches.idle()
    return str(made.call_id)


async def test_a_call_hung_up_through_the_router_before_its_sideband_attached_ends_normally(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller hangs the call up (through the router) before the sideband's handshake: the
    upstream answers it 404, which is the call's end, not a failure (no warning, no
    CONNECT_FAILED), and the stream slot is given back."""
    caplog.set_level(logging.WARNING, logger="switchboard.router")
    with TelemetryCapture(tracing=False) as captured:
        router = await start_router(config(fake))
        call_id = await _hung_up_before_the_sideband(router, fake)
        points = [labels for labels, _ in captured.points("switchboard.requests")]
    sidebands = fake.state.calls(path="/v1/realtime")
    assert sidebands == []  # refused before it was recorded: the call was gone
    realtime = [p for p in points if p.get("gen_ai.operation.name") == "realtime"]
    assert [p["switchboard.outcome"] for p in realtime] == ["OK"]
    assert [r.message for r in caplog.records if "sideband" in r.message] == []
    offer_rpc = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    again = await router.stub.CreateRealtimeCall(offer_rpc, metadata=bearer(METERED))
    assert again.call_id != call_id  # the client's one stream slot was given back


async def test_a_sideband_refused_after_a_refused_hangup_is_still_a_warning(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """A hangup the upstream refused may leave the call going: its sideband refused then is
    the failure it was (CONNECT_FAILED, a warning)."""
    caplog.set_level(logging.WARNING, logger="switchboard.router")
    with TelemetryCapture(tracing=False) as captured:
        router = await start_router(config(fake))
        await _hung_up_before_the_sideband(router, fake, Scenario.server_error(503))
        points = [labels for labels, _ in captured.points("switchboard.requests")]
    realtime = [p for p in points if p.get("gen_ai.operation.name") == "realtime"]
    assert [p["switchboard.outcome"] for p in realtime] == ["CONNECT_FAILED"]
    assert len([r for r in caplog.records if "sideband" in r.message]) == 1
