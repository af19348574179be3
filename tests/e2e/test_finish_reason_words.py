"""OpenAI-compatible upstreams that say a finish reason in words of their own for one OpenAI
has: Mistral's `model_length` (its context window reached: Mistral's ChatCompletionChoice
`finish_reason` enum is stop, length, model_length, error, tool_calls) is OpenAI's `length`,
which callers test for to know the answer was cut; unary and streamed alike. A word with no
OpenAI equivalent goes on as the upstream said it."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_reasoning_sdk import HELLO
from tests.helpers import serve_app


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_mistrals_model_length_is_openais_length(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="model_length"))

    if streaming:
        stream = await sdk.chat.completions.create(model="chain", messages=HELLO, stream=True)
        reasons = [c.choices[0].finish_reason async for c in stream if c.choices]
        assert [r for r in reasons if r] == ["length"]
    else:
        answer = await sdk.chat.completions.create(model="chain", messages=HELLO)
        assert answer.choices[0].finish_reason == "length"


async def test_a_finish_word_openai_has_none_for_goes_on_as_said(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="eos_token"))

    answer = await sdk.chat.completions.create(model="chain", messages=HELLO)

    said: str = answer.choices[0].finish_reason
    assert said == "eos_token"


@pytest.mark.parametrize("word", ["error", "insufficient_system_resource"])
async def test_a_finish_that_says_the_generation_failed_fails_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, word: str
) -> None:
    """Mistral's `error` and DeepSeek's `insufficient_system_resource` ("interrupted due to
    insufficient resource of the inference system") say the answer is broken, not done: the
    deployment failed (UPSTREAM_ERROR) and the group's next answers."""
    fake.state.set_scenario(Scenario(finish_reason=word), model="model-a")

    raw = await sdk.chat.completions.with_raw_response.create(model="chain", messages=HELLO)

    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.parse().choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("word", "next_deployment"),
    [("error", "alpha/model-a"), ("insufficient_system_resource", "beta/model-b")],
)
async def test_only_a_capacity_finish_cools_the_deployment_for_everyone(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, word: str, next_deployment: str
) -> None:
    """Mistral's and vLLM's `error` ("retryable request-level internal error", as vLLM's
    finish reasons say it) is one answer's failure: this request goes on to the group's next,
    the next request is the deployment's again. DeepSeek's `insufficient_system_resource` is
    the inference system's capacity: cooled for everyone, as a 503 is. (The conversation that
    met either leaves the deployment, as its thread protection says: another is asked.)"""
    fake.state.set_scenario(Scenario(finish_reason=word), model="model-a")
    await sdk.chat.completions.create(model="chain", messages=HELLO)
    fake.state.clear_scenarios()

    other: Any = [{"role": "user", "content": "another conversation"}]
    raw = await sdk.chat.completions.with_raw_response.create(model="chain", messages=other)

    assert raw.headers["x-switchboard-deployment"] == next_deployment


async def test_a_stream_whose_generation_failed_ends_with_an_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Its text was sent before the upstream said it failed: the caller is told (an error
    event), not handed a cut answer as a whole one."""
    fake.state.set_scenario(Scenario(finish_reason="error"), model="model-a")
    fake.state.set_scenario(Scenario(finish_reason="error"), model="model-b")

    stream = await sdk.chat.completions.create(model="chain", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as raised:
        async for _ in stream:
            pass

    assert "UPSTREAM_ERROR" in raised.value.message or "error" in raised.value.message


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_choices_that_are_no_list_are_a_malformed_answer(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, streaming: bool
) -> None:
    """The finish-reason check reads the upstream's JSON before it is parsed: `choices` that
    are no list (a number here) are the upstream's malformed answer, as the codec says it (the
    group's next deployment answers), not a TypeError out of the check."""

    async def broken(request: web.Request) -> web.StreamResponse:
        body = {"id": "x", "object": "chat.completion", "created": 1, "choices": 5}
        if not (await request.json()).get("stream"):
            return web.json_response(body)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: " + orjson.dumps(body) + b"\n\ndata: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/chat/completions", broken)
    async with serve_app(app) as url:
        config = base_config(fake.base_url)
        config["providers"]["alpha"]["base_url"] = url
        edge = await start_edge(await start_router(config))
        async with openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        ) as sdk:
            raw = await sdk.chat.completions.with_raw_response.create(
                model="chain", messages=HELLO, stream=streaming
            )
            answer: Any = raw.parse()
            if streaming:
                _ = [c async for c in answer]

    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
