"""A WebRTC call's hangup the upstream refuses (HangupRealtimeCall): what it said reaches the
caller scrubbed as any attempt's failure is (`UpstreamFailure.scrub`): a provider that echoes
the key it got (OpenAI's 401 quotes it) never shows it to the caller."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge

pytestmark = pytest.mark.timeout(30)

# Of no key's shape: only the config's list masks it.
KEY = "plainkey-hangup-0123456789"
OFFER = pb.CreateRealtimeCallRequest(model="voice", sdp="v=0\r\n")
SAID = f"Incorrect API key provided: {KEY}. You can find your API key in your account."


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
    body = {"error": {"message": SAID, "type": "invalid_request_error", "code": KEY}}
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


async def test_a_refused_hangup_over_http_never_shows_the_key(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    edge = await start_edge(await start_router(_config(fake.base_url)))
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        made = await http.post(
            "/v1/realtime/calls?model=voice",
            content="v=0\r\n",
            headers={"content-type": "application/sdp"},
        )
        assert made.status_code == 201, made.text
        call_id = made.headers["location"].rsplit("/", 1)[-1]
        body = {"error": {"message": SAID, "type": "invalid_request_error", "code": KEY}}
        fake.state.set_scenario(Scenario(status=400, error_body=body))

        hung = await http.post(f"/v1/realtime/calls/{call_id}/hangup")

    assert hung.status_code >= 400 and "Incorrect API key provided" in hung.text
    assert KEY not in hung.text
