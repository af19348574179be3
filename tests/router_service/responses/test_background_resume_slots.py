"""A ResumeResponse stream holds its client's stream slot (`max_concurrent_streams`, taken for
`server.lease_ttl_s`) as any stream does: renewed while it runs past that TTL (a background
response reasoning long), given back when it ends. The router's ManualClock moves, nothing
sleeps."""

from __future__ import annotations

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.engine.test_stream_holds import RenewerClock, gone_after_a_period
from tests.router_service.responses.test_background_rpcs import A, start_request

pytestmark = pytest.mark.timeout(30)

STREAMS = "client:a:streams"
PERIOD_S = 10.0  # a third of the slot's TTL


async def test_a_resume_longer_than_its_slots_ttl_keeps_the_slot_and_gives_it_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = RenewerClock()
    store = MemoryStateStore(clock)
    config = guarded_config(
        fake.base_url,
        client("a", A, max_concurrent_streams=1),
        server={"port": 0, "lease_ttl_s": 3 * PERIOD_S},
    )
    config["providers"]["alpha"]["timeouts"] = {"stall_s": 3600}  # a long, quiet reasoning
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    streamed = start_request("resp_long")
    streamed.stream = True
    await router.stub.StartBackgroundResponse(streamed, metadata=bearer(A))
    call = router.stub.ResumeResponse(pb.ResumeResponseRequest(id="resp_long"), metadata=bearer(A))
    messages = aiter(call)
    assert orjson.loads((await anext(messages)).event_json)["type"] == "response.created"
    await clock.pass_periods(9, PERIOD_S)  # 90 s: three times the slot's TTL
    assert await store.held([STREAMS]) == [1]  # its client cannot open one more stream
    fake.state.release()
    rest = [orjson.loads(m.event_json) async for m in messages if not m.HasField("heartbeat")]
    assert rest[-1]["type"] == "response.completed"

    async def given_back() -> bool:
        return await store.held([STREAMS]) == [0]

    await eventually(given_back, what="the stream slot given back")
    assert await router.server.jobs.settle(5) == 0
    await gone_after_a_period(clock, PERIOD_S)  # nothing renews it again
