"""A streamed background response that runs long in silence: its resume
(`GET /v1/responses/{id}?stream=true`) hears `: keepalive` after each `streams.heartbeat_s`
without an event, as a live stream does, so that no reader's idle timeout (the openai SDK's
600 s) ends it. The router's ManualClock moves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.background import held
from tests.e2e.stream_harness import StartEdge

pytestmark = pytest.mark.timeout(30)

BEAT_S = 5.0  # well inside the upstream's first-chunk timeout (30 s)


async def _lines_until(lines: AsyncIterator[str], wanted: str) -> list[str]:
    """The lines read up to and with the first that starts with `wanted`."""
    seen: list[str] = []
    async for line in lines:
        seen.append(line)
        if line.startswith(wanted):
            return seen
    raise AssertionError(f"no {wanted!r} in {seen}")


async def test_a_silent_resumed_stream_hears_keepalives(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    clock = ManualClock()
    config = base_config(fake.base_url, streams={"heartbeat_s": BEAT_S})
    router = await start_router(config, clock=clock)
    edge = await start_edge(router)
    fake.state.hold()
    sdk = openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0)
    async with sdk, httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        started = await sdk.responses.create(
            model="chain", input="hi", background=True, stream=True
        )
        created = await anext(aiter(started))
        assert created.type == "response.created"
        response_id = created.response.id
        await started.close()
        await held(fake)
        path = f"/v1/responses/{response_id}"
        query = {"stream": "true", "starting_after": "1"}
        async with http.stream("GET", path, params=query) as answer:
            lines = answer.aiter_lines()
            await _lines_until(lines, "data: ")  # response.in_progress, replayed
            clock.advance(BEAT_S)
            assert (await _lines_until(lines, ":"))[-1] == ": keepalive"
            fake.state.release()
            rest = await _lines_until(lines, "event: response.completed")
        assert not [line for line in rest if line.startswith(":")]  # events came: no beat
        assert await router.server.jobs.settle(5) == 0
