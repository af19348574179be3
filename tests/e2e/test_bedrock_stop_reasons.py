"""Converse's stop reasons that say the model's output is unusable (`malformed_model_output`:
it broke its structured output; `malformed_tool_use`: a tool call it could not form) are the
deployment's failure, never an answer that "stopped" well: unary, the group's next deployment
answers; streamed, the content already relayed ends in one error event."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_reasoning_sdk import HELLO, IAM

NOVA = "amazon.nova-pro-v1:0"
MALFORMED = ["malformed_model_output", "malformed_tool_use"]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"]["br"] = {
        "kind": "bedrock",
        "base_url": fake.url,
        "region": "us-east-1",
        "keys": [IAM],
    }
    deployments = [{"provider": "br", "model": NOVA}, {"provider": "alpha", "model": "model-a"}]
    config["models"]["br-then-gpt"] = {"deployments": deployments}
    return await start_router(config)


@pytest.mark.parametrize("stop", MALFORMED)
async def test_a_malformed_unary_answer_fails_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stop: str
) -> None:
    fake.state.set_scenario(Scenario(finish_reason=stop), model=NOVA)

    raw = await sdk.chat.completions.with_raw_response.create(model="br-then-gpt", messages=HELLO)

    answer: Any = raw.parse()
    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == (
        "Echo: hello",
        "stop",
    )
    assert [c.model for c in fake.state.calls()] == [NOVA, "model-a"]


@pytest.mark.parametrize("stop", MALFORMED)
async def test_a_malformed_streamed_answer_ends_in_an_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stop: str
) -> None:
    fake.state.set_scenario(Scenario(finish_reason=stop, chunks=3), model=NOVA)

    stream = await sdk.chat.completions.create(model="br-then-gpt", messages=HELLO, stream=True)
    finishes: list[str | None] = []
    with pytest.raises(openai.APIError) as raised:
        async for chunk in stream:
            finishes += [c.finish_reason for c in chunk.choices]

    assert stop in raised.value.message
    assert not any(finishes)  # no "stop": the content relayed is no finished answer
    assert [c.model for c in fake.state.calls()] == [NOVA]


@pytest.mark.parametrize("stop", MALFORMED)
async def test_a_malformed_answer_cools_no_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stop: str
) -> None:
    """The request's schema or tools provoke it: one caller's malformed answer must not take
    the deployment out for everyone (as a 5xx would cool it)."""
    fake.state.set_scenario(Scenario(finish_reason=stop), model=NOVA)
    await sdk.chat.completions.create(model="br-then-gpt", messages=HELLO)
    fake.state.remove_scenario(model=NOVA)

    other: Any = [{"role": "user", "content": "another conversation"}]  # no session's pin
    raw = await sdk.chat.completions.with_raw_response.create(model="br-then-gpt", messages=other)

    assert raw.headers["x-switchboard-deployment"] == f"br/{NOVA}"
    assert [c.model for c in fake.state.calls()] == [NOVA, "model-a", NOVA]
