"""ResumeResponse on a real router over gRPC: a streamed background response's events are its
client's (another's id is NOT_FOUND, as LoadResponses says it), replayed after
`starting_after` (nothing after the end, no second end), and past `max_stream_bytes` a resume
is refused typed before any event."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_background_rpcs import A, B, start_request


async def _started(
    fake: FakeUpstream, start_router: StartRouter, **responses: object
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("a", A), client("b", B), responses=responses)
    router = await start_router(config, clock=ManualClock())
    streamed = start_request("resp_s1")
    streamed.stream = True
    await router.stub.StartBackgroundResponse(streamed, metadata=bearer(A))
    assert await router.server.jobs.settle(5) == 0
    return router


async def _resumed(
    router: RouterHandle, key: str, after: int | None = None
) -> list[dict[str, Any]]:
    request = pb.ResumeResponseRequest(id="resp_s1")
    if after is not None:
        request.starting_after = after
    call = router.stub.ResumeResponse(request, metadata=bearer(key))
    return [orjson.loads(message.event_json) async for message in call]


async def test_a_finished_stream_is_replayed_to_its_client_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await _started(fake, start_router)
    events = await _resumed(router, A)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Echo: hello"
    assert await _resumed(router, A, after=len(events) - 3) == events[-2:]
    assert await _resumed(router, A, after=len(events) - 1) == []  # its end seen: nothing more
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _resumed(router, B)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_resume_past_the_bytes_kept_is_refused_before_any_event(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(content="word " * 2000))
    router = await _started(fake, start_router, max_stream_bytes=4096)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _resumed(router, A, after=0)
    details = details_from_rpc_error(refused.value)
    assert (details.code, details.openai_code) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream_not_kept",
    )


async def test_the_events_kept_count_towards_the_clients_stored_bytes(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The events (several times the answer's size, kept as long as the response) were kept
    # for free: only the queued response counted, so a client could keep any amount of them.
    fake.state.set_scenario(Scenario(content="word " * 300))
    router = await _started(fake, start_router, client_stored_bytes=4096)
    events = await _resumed(router, A)
    assert sum(len(orjson.dumps(e)) for e in events) > 4096  # past the quota by themselves
    again = router.stub.StartBackgroundResponse(start_request("resp_s2"), metadata=bearer(A))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await again
    details = details_from_rpc_error(refused.value)
    assert details.openai_code == "background_not_stored"
    assert "client_stored_bytes" in details.message
