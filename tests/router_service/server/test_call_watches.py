"""The router's WebRTC call watches (server/_call_watch.py) as a stop ends them: a watch whose
task had not yet taken its first step still gives its call's stream slot back."""

from __future__ import annotations

from typing import Any

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import Admission, Attempt, rule_for
from router_service.engine import RequestContext
from router_service.errors import ClientRateLimitedError
from router_service.fake_upstream import FakeUpstream
from router_service.server._call_watch import CallWatch, CallWatches
from router_service.server._interceptors import gate_for
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(30)

KEY = "sk-one-stream"
METHOD = "/switchboard.v1.RouterService/CreateRealtimeCall"
OFFER = pb.CreateRealtimeCallRequest(model="voice", sdp="v=0\r\n")


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    sections["models"]["voice"] = {"deployments": [realtime]}
    sections["auth"] = {"clients": [client("one", KEY, max_concurrent_streams=1)]}
    return sections


async def admitted(router: RouterHandle) -> Admission:
    """An offer's admission, as the interceptor takes it: the client's one stream slot."""
    gate = gate_for(router.runtime)
    attempt = Attempt(METHOD, f"Bearer {KEY}", "ipv4:127.0.0.1:1")
    rule = rule_for(METHOD)
    assert rule is not None
    caller = gate.authenticate(attempt, rule)
    request = pb.CreateRealtimeCallRequest()
    request.CopyFrom(OFFER)
    return await gate.admit(attempt, caller, rule, request, stream_ttl_s=600)


async def test_a_watch_stopped_before_its_first_step_gives_its_slot_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(config(fake))
    admission = await admitted(router)
    runtime = router.runtime
    ctx = RequestContext("voice", runtime.clock, client="one")
    deployment = runtime.planner.resolve("voice").members[0]
    watches = CallWatches()
    await watches.start(CallWatch(runtime, ctx, deployment, "sk-up", "rtc_1", admission))
    await watches.stop_all()  # no await between: the watch's task never ran

    assert not admission.holds_stream_slot
    again = await admitted(router)  # the client's one slot is free again
    with pytest.raises(ClientRateLimitedError):  # (one slot: `again` holds it now)
        await admitted(router)
    await again.close()
