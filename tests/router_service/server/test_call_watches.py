"""The router's WebRTC call watches (server/_call_watch.py) as a stop ends them: a watch whose
task had not yet taken its first step still gives its call's stream slot back."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import Admission, Attempt, rule_for
from router_service.clock import ManualClock
from router_service.engine import RequestContext
from router_service.errors import ClientRateLimitedError, StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.server._call_watch import CallWatch, CallWatches
from router_service.state import MemoryStateStore
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.release_failures import FailingReleases
from tests.router_service.auth.helpers import bearer, client

pytestmark = pytest.mark.timeout(30)

TTL_S = 30.0  # server.lease_ttl_s: the watch renews the slot every 10 s
KEY = "sk-one-stream"
METHOD = "/switchboard.v1.RouterService/CreateRealtimeCall"
OFFER = pb.CreateRealtimeCallRequest(model="voice", sdp="v=0\r\n")


def config(fake: FakeUpstream) -> dict[str, Any]:
    sections = base_config(fake.base_url)
    realtime = {"provider": "alpha", "model": "gpt-realtime", "realtime": True}
    sections["models"]["voice"] = {"deployments": [realtime]}
    sections["auth"] = {"clients": [client("one", KEY, max_concurrent_streams=1)]}
    sections["server"] = {**sections.get("server", {}), "lease_ttl_s": TTL_S}
    return sections


async def admitted(router: RouterHandle) -> Admission:
    """An offer's admission, as the interceptor takes it: the client's one stream slot."""
    gate = router.runtime.gate
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


class FailingOnceStore(MemoryStateStore):
    """Memory state whose first renewal of a client's stream slot fails with an error that is
    not the store's own (a bug's), then renews as usual; it counts the renewals asked."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.renewals = 0

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        if resource.endswith(":streams"):
            self.renewals += 1
            if self.renewals == 1:
                raise RuntimeError("a bug in a renewal")
        return await super().renew(resource, lease_id, ttl_s)


async def test_an_unexpected_renewal_error_does_not_end_the_slot_keeping(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """As a WebSocket session's relay: logged, and renewed again the next period."""
    clock = ManualClock()
    store = FailingOnceStore(clock)
    router = await start_router(config(fake), clock=clock, store=store)
    caplog.set_level(logging.ERROR, logger="switchboard.router")
    made = await router.stub.CreateRealtimeCall(OFFER, metadata=bearer(KEY))
    assert made.call_id

    async def renewed(times: int) -> bool:
        clock.advance(TTL_S / 3)
        return store.renewals >= times

    await eventually(lambda: renewed(3), what="the slot renewed after the failure")
    assert "renewing a call's stream slot failed" in caplog.text
    assert "a bug in a renewal" in caplog.text  # the traceback, to find the bug by
    await router.server.call_watches.stop_all()


async def test_a_call_placed_as_the_router_stops_is_answered_when_its_slot_release_fails(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingReleases(StoreUnavailableError("redis: connection lost"))
    router = await start_router(config(fake), store=store)
    await router.server.call_watches.stop_all()  # a stop began: a call is settled, not watched
    with caplog.at_level(logging.WARNING):
        made = await router.stub.CreateRealtimeCall(OFFER, metadata=bearer(KEY), timeout=5)

    assert made.call_id  # placed upstream (paid for): not the store's error in its place
    told = [r for r in caplog.records if "giving a stream slot back failed" in r.getMessage()]
    assert len(told) == 1 and KEY not in caplog.text
