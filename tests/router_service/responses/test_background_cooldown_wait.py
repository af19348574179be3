"""A background response has no caller waiting on a socket: when every deployment of its model
is cooling past `routing.max_cooldown_wait_s`, it waits the soonest cooldown out within its own
time limit (`responses.background_timeout_s`) and is answered, as it did before the bound; a
foreground call is refused at once (tests/router_service/engine/test_cooldown_wait_bound.py)."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.router_service.engine.test_cooldown_wait_bound import _cooled
from tests.router_service.server.test_routing import AS_SERVICE, ask


async def test_a_background_response_waits_out_a_cooldown_past_the_bound(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    started = clock.now()
    queued = {"id": "resp_cool1", "object": "response", "created_at": 1, "output": []}
    request = pb.StartBackgroundResponseRequest(
        chat=ask(session="s2"), response_json=orjson.dumps(queued).decode()
    )
    await router.stub.StartBackgroundResponse(request, metadata=AS_SERVICE)
    assert await router.server.jobs.settle(5) == 0
    loaded = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=["resp_cool1"]), metadata=AS_SERVICE
    )
    done = loaded.responses[0]
    assert done.background_status == "completed", done.response_json
    assert clock.now() - started >= 300.0  # waited on the router's clock, not refused
    assert fake.state.count() == 3  # the two 503s, then its answer after the cooldown
