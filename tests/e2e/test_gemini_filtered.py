"""Content filters at the edge's Gemini API, said as Gemini says each
(https://ai.google.dev/api/generate-content#PromptFeedback and #FinishReason): a prompt refused
is `promptFeedback.blockReason` with Vertex's own reasons kept (JAILBREAK, MODEL_ARMOR:
https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/GenerateContentResponse
#BlockedReason); an answer withheld whole, or cut off by a filter mid-stream, is a candidate
ending with its `finishReason` (SAFETY…), not a blocked prompt nor an error. An OpenAI caller
gets OpenAI's error object, Gemini's own words under `provider_error`."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_gemini_sdk import WEATHER, config
from tests.vertex_keys import express_key


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = config(fake)
    out["providers"]["vx"] = {"kind": "vertex", "base_url": fake.url, "keys": [express_key("v")]}
    out["models"]["vertex-flash"] = {
        "deployments": [{"provider": "vx", "model": "gemini-2.5-flash"}]
    }
    return await start_router(out)


async def _answers(gemini: genai.Client, model: str, stream: bool) -> list[Any]:
    if not stream:
        return [await gemini.aio.models.generate_content(model=model, contents="bad")]
    return [
        r
        async for r in await gemini.aio.models.generate_content_stream(model=model, contents="bad")
    ]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("reason", ["JAILBREAK", "MODEL_ARMOR"])
async def test_vertexs_own_block_reasons_reach_the_caller(
    gemini: genai.Client, fake: FakeUpstream, reason: str, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(blocked=reason))
    (response,) = await _answers(gemini, "vertex-flash", stream)
    assert not response.candidates
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason(reason)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["flash", "vertex-flash"])
async def test_an_answer_withheld_whole_is_a_candidate_finished_by_the_filter(
    gemini: genai.Client, fake: FakeUpstream, model: str, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="PROHIBITED_CONTENT"))
    responses = await _answers(gemini, model, stream)
    last = responses[-1]
    assert last.prompt_feedback is None or last.prompt_feedback.block_reason is None
    (candidate,) = last.candidates or []
    assert candidate.finish_reason == types.FinishReason.PROHIBITED_CONTENT
    assert not (candidate.content and candidate.content.parts and last.text)


async def test_a_filter_mid_stream_ends_the_candidate_with_safety(
    gemini: genai.Client, fake: FakeUpstream
) -> None:
    refusal = {"message": "filtered", "type": "invalid_request_error", "code": "content_filter"}
    fake.state.set_scenario(
        Scenario(
            content="one two three four five six", wrapped_error_at_chunk=3, wrapped_error=refusal
        )
    )
    stream = await gemini.aio.models.generate_content_stream(model="chain", contents="go")
    responses = [response async for response in stream]  # no ClientError raised
    said = "".join(r.text or "" for r in responses)
    assert said and "one two three four five six".startswith(said)
    (candidate,) = responses[-1].candidates or []
    assert candidate.finish_reason == types.FinishReason.SAFETY


async def test_an_openai_caller_gets_openais_error_object_with_geminis_words_apart(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(blocked="PROHIBITED_CONTENT"))
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="flash", messages=[{"role": "user", "content": "bad"}]
        )
    error: Any = refused.value.body
    assert error["code"] == "content_filter" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code", "provider_error"}
    assert error["provider_error"] == {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}


async def test_a_call_the_filter_cut_off_mid_stream_is_not_a_call(
    gemini: genai.Client, fake: FakeUpstream
) -> None:
    # Its thoughts shown, then a call whose arguments never came: the filter's end says no
    # functionCall (its client would run it, with arguments the model never gave).
    refusal = {"message": "filtered", "type": "invalid_request_error", "code": "content_filter"}
    fake.state.set_scenario(
        Scenario(
            reasoning="thinking it over",
            tool_call=True,
            tool_arguments={"city": "Paris"},
            wrapped_error_at_chunk=6,  # role, three thoughts, the call's name: then the filter
            wrapped_error=refusal,
        )
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        thinking_config=types.ThinkingConfig(include_thoughts=True),
    )
    stream = await gemini.aio.models.generate_content_stream(
        model="chain", contents="go", config=config
    )
    responses = [response async for response in stream]
    contents = [c.content for r in responses for c in r.candidates or [] if c.content]
    parts = [part for content in contents for part in content.parts or []]
    assert any(part.thought for part in parts)
    assert not any(r.function_calls for r in responses)
    (candidate,) = responses[-1].candidates or []
    assert candidate.finish_reason == types.FinishReason.SAFETY
