"""ResumeResponse on a real router over gRPC sends a heartbeat after each `streams.heartbeat_s`
without an event (a background response running long in silence), as a live stream does, and
none while events come: the router's ManualClock moves, nothing sleeps."""

from __future__ import annotations

import orjson
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.background import held
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import A, start_request

pytestmark = pytest.mark.timeout(30)

BEAT_S = 5.0  # the stream's heartbeat, well inside the upstream's first-chunk timeout (30 s)


async def test_a_silent_background_stream_beats_until_its_events_come(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = guarded_config(fake.base_url, client("a", A), streams={"heartbeat_s": BEAT_S})
    router = await start_router(config, clock=clock)
    fake.state.hold()
    streamed = start_request("resp_b1")
    streamed.stream = True
    await router.stub.StartBackgroundResponse(streamed, metadata=bearer(A))
    await held(fake)  # running, and silent until released
    call = router.stub.ResumeResponse(pb.ResumeResponseRequest(id="resp_b1"), metadata=bearer(A))
    messages = aiter(call)
    head = [orjson.loads((await anext(messages)).event_json)["type"] for _ in range(3)]
    assert head == ["response.created", "response.queued", "response.in_progress"]
    for _ in range(2):
        clock.advance(BEAT_S)
        beat = await anext(messages)
        assert beat.HasField("heartbeat") and not beat.event_json
        assert beat.heartbeat.idle_ms == BEAT_S * 1000  # since the last message
    fake.state.release()
    rest = [orjson.loads(message.event_json) async for message in messages]
    assert rest[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in rest] == list(range(3, 3 + len(rest)))  # no beat
    assert await router.server.jobs.settle(5) == 0
