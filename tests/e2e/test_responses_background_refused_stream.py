"""A streamed background response (`responses.create(..., background=True, stream=True)`) whose
stream is refused before its first event, with the official `openai` SDK: the caller is told the
call failed and never learns the response's id, so the response must not run on where no one can
reach it (paid for; and the SDK's own retry of a 429 started one more each time)."""

from __future__ import annotations

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client, guarded_config

STREAM_KEY = "sk-streamer-0123456789"


async def test_a_stream_refused_at_the_clients_stream_cap_leaves_no_response_running(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    config = guarded_config(fake.base_url, client("streamer", STREAM_KEY, max_concurrent_streams=1))
    router = await start_router(config)
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=STREAM_KEY, max_retries=0, timeout=10
    )
    # The client's one stream, open: its upstream holds it after its first events.
    fake.state.set_scenario(Scenario(held_after_chunks=2))
    open_stream = await sdk.responses.create(model="chain", input="first", stream=True)
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the open stream held")
    fake.state.remove_scenario()
    fake.state.hold()  # a background call, should one be made, is held upstream
    try:
        with pytest.raises(openai.RateLimitError, match="concurrent streams"):
            await sdk.responses.create(model="chain", input="second", background=True, stream=True)
        # Told it failed, the caller has no id to poll or cancel: nothing of it runs on.
        assert router.server.jobs.running == 0
        await fake.state.wait_for(lambda: fake.state.in_flight == 1, what="the open stream only")
    finally:
        fake.state.release()
    assert [e.type async for e in open_stream][-1] == "response.completed"
    await sdk.close()
