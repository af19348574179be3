"""Helpers of the background-response tests: waiting as a poller does, holding an answer."""

from __future__ import annotations

import openai
from openai.types.responses import Response

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.server import RouterServer

HELD = Scenario(latency_ms=60_000)  # an answer the upstream holds while the test looks


async def settled(sdk: openai.AsyncOpenAI, response_id: str, runner: RouterServer) -> Response:
    """The response once the replica running it (`runner`) has ended it, read as a poller reads
    it: no polling loop, the job's own end is awaited."""
    assert await runner.jobs.settle(10) == 0
    response = await sdk.responses.retrieve(response_id)
    assert response.status not in ("queued", "in_progress"), response.status
    return response


async def held(fake: FakeUpstream) -> None:
    """Until the upstream holds one call."""
    await fake.state.wait_for(lambda: fake.state.in_flight == 1, what="a held call")


async def jobs_ended(server: RouterServer) -> None:
    """Until `server` runs no background response (its jobs write their end, then leave)."""
    assert await server.jobs.settle(5) == 0
