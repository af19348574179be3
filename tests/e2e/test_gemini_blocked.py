"""A prompt a content filter refuses, at the edge's Gemini API: Gemini answers it with HTTP 200,
`promptFeedback.blockReason` and no candidates (https://ai.google.dev/api/generate-content
#PromptFeedback), unary and streamed, whichever deployment's filter refused it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import types

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_gemini_sdk import config

# (model, the filter's reason, the blockReason the caller reads): an OpenAI-kind deployment's
# refusal (a 400 content_filter) is Gemini's SAFETY; a Gemini-kind one's own reason is kept.
BLOCKS = [("chain", "SAFETY", "SAFETY"), ("flash", "PROHIBITED_CONTENT", "PROHIBITED_CONTENT")]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def assert_blocked(response: Any, reason: str) -> None:
    assert not response.candidates
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason(reason)
    assert response.text is None


@pytest.mark.parametrize(("model", "filtered", "reason"), BLOCKS)
async def test_a_blocked_prompt_is_a_200_with_its_block_reason(
    gemini: genai.Client, fake: FakeUpstream, model: str, filtered: str, reason: str
) -> None:
    fake.state.set_scenario(Scenario(blocked=filtered))
    response = await gemini.aio.models.generate_content(model=model, contents="something bad")
    assert_blocked(response, reason)
    assert response.usage_metadata is not None and response.usage_metadata.prompt_token_count


@pytest.mark.parametrize(("model", "filtered", "reason"), BLOCKS)
async def test_a_blocked_prompt_streams_one_response_with_its_block_reason(
    gemini: genai.Client, fake: FakeUpstream, model: str, filtered: str, reason: str
) -> None:
    fake.state.set_scenario(Scenario(blocked=filtered))
    stream = await gemini.aio.models.generate_content_stream(model=model, contents="bad")
    responses = [response async for response in stream]
    assert len(responses) == 1
    assert_blocked(responses[0], reason)


async def test_a_blocked_prompt_is_one_response_in_the_json_array(
    router: RouterHandle, fake: FakeUpstream, start_edge: Any
) -> None:
    edge = await start_edge(router)
    fake.state.set_scenario(Scenario(blocked="SAFETY"))
    body = {"contents": [{"role": "user", "parts": [{"text": "bad"}]}]}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        answer = await http.post("/v1beta/models/chain:streamGenerateContent", json=body)
    assert answer.status_code == 200, answer.text
    (response,) = orjson.loads(answer.content)
    assert response["promptFeedback"]["blockReason"] == "SAFETY"
    assert "candidates" not in response


async def test_a_refusal_after_hidden_thoughts_committed_the_stream_is_still_a_block(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Thoughts the caller did not ask for (hidden) for a heartbeat interval commit the stream
    (HTTP 200 sent) with nothing written yet; a content filter's refusal then is still the one
    blocked response, as a moment earlier (before the commit): not a 400 error chunk, which
    the SDK raises as ClientError."""
    clock = ManualClock()
    router = await start_router(config(fake), clock=clock)
    edge = await start_edge(router)
    thinking = " ".join(f"step{i}" for i in range(40))  # hidden, past the hold and the error
    refusal = {"message": "filtered", "type": "invalid_request_error", "code": "content_filter"}
    fake.state.set_scenario(
        Scenario(
            reasoning=thinking,
            held_after_chunks=3,
            wrapped_error_at_chunk=10,
            wrapped_error=refusal,
        )
    )
    body = {"contents": [{"role": "user", "parts": [{"text": "bad"}]}]}
    url = "/v1beta/models/chain:streamGenerateContent?alt=sse"
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        asked = asyncio.ensure_future(
            http.send(http.build_request("POST", url, json=body), stream=True)
        )
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the stream held")
        clock.advance(16.0)  # a heartbeat interval of hidden thoughts: the stream commits
        answer = await asked  # its head: HTTP 200, nothing of the answer yet
        fake.state.release()
        events = [line async for line in answer.aiter_lines() if line.startswith("data: ")]
        await answer.aclose()
    assert answer.status_code == 200
    (response,) = [orjson.loads(event.removeprefix("data: ")) for event in events]
    assert "error" not in response, response
    assert_blocked(types.GenerateContentResponse.model_validate(response), "SAFETY")
