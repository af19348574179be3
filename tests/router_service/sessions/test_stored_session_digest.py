"""A stored response keeps the name of its conversation's session (`StoredResponse.session_id`)
as a digest, never the caller's `x-session-id` in clear, and a turn continuing it without the
header is still that session (the real OpenAI SDK through the edge, memory and Redis state)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.responses._stored import response_name
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.sessions.test_sticky_per_model import TRANSIENT_S, config

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

RAW = "alice@example.com/thread-7"  # a caller's own id: an e-mail address in it


@pytest.mark.parametrize("background", [False, True])
async def test_a_stored_response_keeps_a_digest_of_the_callers_session_id(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    state_section: dict[str, Any],
    background: bool,
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake.base_url, state_section), clock=clock)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        first = await _on_beta(sdk, router, fake, clock, background)
        kept = await _document(router, first)
        assert RAW.encode() not in kept.SerializeToString()
        assert kept.session_id  # its conversation keeps a name, a digest
        again = await sdk.responses.with_raw_response.create(
            model="chat", input="and then?", previous_response_id=first
        )
    assert again.headers["x-switchboard-deployment"] == "beta/model-b"  # one session still


async def test_a_response_stored_with_the_raw_id_before_is_still_its_session(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any, state_section: dict[str, Any]
) -> None:
    # Responses stored by an older router keep the caller's id in clear: continued, they still
    # name its session, and what the turn stores is the digest.
    clock = ManualClock()
    router = await start_router(config(fake.base_url, state_section), clock=clock)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        first = await _on_beta(sdk, router, fake, clock, background=False)
        old = await _document(router, first)
        old.session_id = RAW  # as the router kept it before
        await router.runtime.store.put_document(
            response_name("", first), old.SerializeToString(), 3600.0
        )
        loaded = await router.stub.LoadResponses(pb.LoadResponsesRequest(ids=[first]))
        assert loaded.responses[0].session_id == (await _fresh_digest(sdk, router))
        again = await sdk.responses.create(
            model="chat", input="and then?", previous_response_id=first
        )
        assert RAW.encode() not in (await _document(router, again.id)).SerializeToString()
        later = await sdk.responses.with_raw_response.create(
            model="chat", input="and later?", previous_response_id=again.id
        )
    assert later.headers["x-switchboard-deployment"] == "beta/model-b"


async def _on_beta(
    sdk: openai.AsyncOpenAI,
    router: RouterHandle,
    fake: FakeUpstream,
    clock: ManualClock,
    background: bool,
) -> str:
    """A first turn stored under the caller's `x-session-id`, moved to beta by one failure of
    alpha, whose cooldown then ends: only the session's sticky choice keeps it on beta."""
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    headers = {"x-session-id": RAW}
    if background:
        queued = await sdk.responses.create(
            model="chat", input="hello", background=True, extra_headers=headers
        )

        async def done() -> bool:
            return (await sdk.responses.retrieve(queued.id)).status == "completed"

        await eventually(done, what="the background response answered")
        first = queued.id
    else:
        first = (await sdk.responses.create(model="chat", input="hello", extra_headers=headers)).id
    assert fake.state.calls()[-1].model == "model-b"
    await router.runtime.afterwork.drain()
    clock.advance(TRANSIENT_S + 1)  # alpha serves again
    return first


async def _document(router: RouterHandle, response_id: str) -> pb.StoredResponse:
    """The stored response as the state store keeps it."""
    (data,) = await router.runtime.store.get_documents([response_name("", response_id)])
    assert data is not None
    return pb.StoredResponse.FromString(data)


async def _fresh_digest(sdk: openai.AsyncOpenAI, router: RouterHandle) -> str:
    """The name a response stored now under `RAW` keeps."""
    fresh = await sdk.responses.create(
        model="chat", input="hello", extra_headers={"x-session-id": RAW}
    )
    return (await _document(router, fresh.id)).session_id
