"""A WebRTC call's usage reaches the upstream key's tpm that made it, as a Realtime session's
does (test_realtime_long_usage.py), however long the call lasted: the key's lease is given back
once the offer is answered, and the tokens its sideband reads (16 in the fake's one response)
count in the key's window of the minute they came in when the call ends; a key with a tpm of
10 is then spent, and the next offer is refused (before, the key never saw them)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.test_realtime_calls_usage import METERED, OFFER, config, sideband_answered
from tests.helpers import advance_until_done
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import bearer

pytestmark = pytest.mark.timeout(30)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures


@pytest.mark.parametrize("minutes", [0, 3])
async def test_a_calls_usage_counts_in_its_keys_tpm(
    fake: FakeUpstream, start_router: StartRouter, minutes: int, state_section: dict[str, Any]
) -> None:
    clock = ManualClock(1_800_000_000.0)  # the start of a minute
    sections = config(fake)
    sections["state"] = state_section
    sections["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "tpm": 10}]
    router = await start_router(sections, clock=clock)
    offer = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    made = await router.stub.CreateRealtimeCall(offer, metadata=bearer(METERED))
    await sideband_answered(fake, made.call_id)
    clock.advance(60.0 * minutes + 1)  # the call lasts; it ends now
    hangup = pb.HangupRealtimeCallRequest(call_id=made.call_id)
    await router.stub.HangupRealtimeCall(hangup, metadata=bearer(METERED))
    await router.server.call_watches.idle()  # the sideband closed: the call settled

    # Refused once its wait for the key (queue_timeout_s, 5 s) ends on the router's clock.
    making = asyncio.ensure_future(router.stub.CreateRealtimeCall(offer, metadata=bearer(METERED)))
    await advance_until_done(clock, 1.0, making, what="the spent key's call refused")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await making
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(refused.value).reason == "NO_CAPACITY"
    assert len(fake.state.calls(path="/v1/realtime/calls")) == 1  # the spent key: not sent to
