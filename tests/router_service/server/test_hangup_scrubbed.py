"""A WebRTC call's hangup the upstream refuses (HangupRealtimeCall): what it said reaches the
caller scrubbed as any attempt's failure is (`UpstreamFailure.scrub`): a provider that echoes
the key it got (OpenAI's 401 quotes it) never shows it to the caller."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter

pytestmark = pytest.mark.timeout(30)

# Of no key's shape: only the config's list masks it.
KEY = "plainkey-hangup-0123456789"
OFFER = pb.CreateRealtimeCallRequest(model="voice", sdp="v=0\r\n")


def _config(fake_url: str) -> dict[str, Any]:
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    return {
        "providers": {"alpha": {"base_url": fake_url, "keys": [KEY]}},
        "models": {"voice": {"deployments": [realtime]}},
        "server": {"port": 0},
        "auth": {"open": True},
    }


@pytest.mark.parametrize("status", [401, 400])
async def test_a_refused_hangup_never_shows_the_key_the_upstream_echoed(
    fake: FakeUpstream, start_router: StartRouter, status: int
) -> None:
    router = await start_router(_config(fake.base_url))
    made = await router.stub.CreateRealtimeCall(OFFER, timeout=5)
    said = f"Incorrect API key provided: {KEY}. You can find your API key in your account."
    body = {"error": {"message": said, "type": "invalid_request_error", "code": KEY}}
    fake.state.set_scenario(Scenario(status=status, error_body=body))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.HangupRealtimeCall(
            pb.HangupRealtimeCallRequest(call_id=made.call_id), timeout=5
        )

    refusal = caught.value
    details = details_from_rpc_error(refusal)
    assert "Incorrect API key provided" in details.message  # what the upstream said, scrubbed
    assert KEY not in str(refusal.details()) and KEY not in details.message
    assert KEY not in repr(details)  # nor in the upstream's error passed through (its code)
