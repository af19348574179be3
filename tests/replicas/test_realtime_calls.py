"""A WebRTC Realtime call made through one replica is hung up through another sharing Redis:
the router keeps which deployment and key made the call in the state store, so replica B
hangs it up with the key replica A leased, for the client that made it only; a call older than
`streams.realtime_call_ttl_s` is forgotten (404)."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.replicas.harness import replica_config, two_replicas
from tests.router_service.auth.helpers import bearer, client

pytestmark = pytest.mark.timeout(60)

APP, OTHER = "sk-app-replica-calls-01", "sk-other-replica-calls-01"
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
TTL_S = 900.0


async def test_a_call_made_on_one_replica_is_hung_up_on_another(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = replica_config(
        fake.base_url,
        redis_url,
        redis_prefix,
        auth={"clients": [client("app", APP), client("other", OTHER)]},
        streams={"realtime_call_ttl_s": TTL_S},
    )
    config["models"]["voice"] = {
        "deployments": [{"provider": "alpha", "model": "gpt-realtime", "realtime": True}]
    }
    clock = ManualClock(1_700_000_000.0)
    one, two = await two_replicas(start_router, config, clock)
    offer = pb.CreateRealtimeCallRequest(model="voice", sdp=OFFER)
    made = await one.stub.CreateRealtimeCall(offer, metadata=bearer(APP))
    assert made.call_id.startswith("rtc_fake_") and made.sdp.startswith("v=0")
    assert made.route.deployment == "alpha/gpt-realtime"
    key = fake.state.calls(path="/v1/realtime/calls")[-1].key

    hangup = pb.HangupRealtimeCallRequest(call_id=made.call_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # another client's call: unknown
        await two.stub.HangupRealtimeCall(hangup, metadata=bearer(OTHER))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    await two.stub.HangupRealtimeCall(hangup, metadata=bearer(APP))
    hung = fake.state.calls(path=f"/v1/realtime/calls/{made.call_id}/hangup")
    assert [(call.key, call.status) for call in hung] == [(key, 200)]

    later = await one.stub.CreateRealtimeCall(offer, metadata=bearer(APP))
    clock.advance(TTL_S + 1)
    forgotten = pb.HangupRealtimeCallRequest(call_id=later.call_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await two.stub.HangupRealtimeCall(forgotten, metadata=bearer(APP))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
