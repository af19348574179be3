"""Workers AI's answers about the deployment's model id itself (5007 "No such model … or task",
a 400; 3042 "The model name is invalid", a 404: https://developers.cloudflare.com/workers-ai/
platform/errors/) are the deployment's configuration, not the caller's request: the group's
next deployment answers, unary and streamed, as an HTTP error or wrapped in a 200."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._dialects import envelope
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_reasoning_sdk import HELLO

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
NO_SUCH_MODEL = (400, 5007, f"No such model {LLAMA} or task")
INVALID_MODEL_ID = (404, 3042, "The model name is invalid")


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"]["cf"] = {
        "kind": "cloudflare",
        "base_url": f"{fake.url}/client/v4",
        "account_id": "acct-123",
        "keys": ["cf-token"],
    }
    deployments = [{"provider": "cf", "model": LLAMA}, {"provider": "alpha", "model": "model-a"}]
    config["models"]["cf-then-gpt"] = {"deployments": deployments}
    config["models"]["cf-only"] = {"deployments": deployments[:1]}
    return await start_router(config)


def scenario(status: int, code: int, message: str, wrapped: bool) -> Scenario:
    error = {"code": code, "message": message}
    if wrapped:  # a 200 whose body is the failure envelope
        return Scenario(wrapped_error=error)
    return Scenario(status=status, error_body=envelope([error]))


@pytest.mark.parametrize("wrapped", [False, True], ids=["http-error", "in-a-200"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("refusal", [NO_SUCH_MODEL, INVALID_MODEL_ID], ids=["5007", "3042"])
async def test_a_model_workers_ai_does_not_have_fails_over(
    sdk: openai.AsyncOpenAI,
    fake: FakeUpstream,
    refusal: tuple[int, int, str],
    streaming: bool,
    wrapped: bool,
) -> None:
    fake.state.set_scenario(scenario(*refusal, wrapped), model=LLAMA)

    raw = await sdk.chat.completions.with_raw_response.create(
        model="cf-then-gpt", messages=HELLO, stream=streaming
    )

    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    answer: Any = raw.parse()
    text = (
        "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])
        if streaming
        else answer.choices[0].message.content
    )
    assert text == "Echo: hello"
    assert [c.model for c in fake.state.calls()] == [LLAMA, "model-a"]


async def test_a_task_the_model_lacks_sets_nothing_aside(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """5007 also says a task the model does not do ("… or task": a caller embedding with a chat
    group): the group's next deployment answers, and the model's chats are untouched (a caller
    must not be able to set a model aside for everyone by asking it the wrong task)."""
    fake.state.set_scenario(scenario(*NO_SUCH_MODEL, wrapped=False), model=LLAMA)
    embedded = await sdk.embeddings.with_raw_response.create(model="cf-then-gpt", input="hi")
    fake.state.remove_scenario(model=LLAMA)

    chatted = await sdk.chat.completions.with_raw_response.create(
        model="cf-then-gpt", messages=HELLO
    )

    assert embedded.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert chatted.headers["x-switchboard-deployment"] == f"cf/{LLAMA}"
    assert [c.model for c in fake.state.calls()] == [LLAMA, "model-a", LLAMA]


async def test_a_task_no_deployment_does_is_the_callers_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(scenario(*NO_SUCH_MODEL, wrapped=False), model=LLAMA)

    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.embeddings.create(model="cf-only", input="hi")

    assert "No such model" in raised.value.message


@pytest.mark.parametrize("code", [[5007], {"internal": 5007}], ids=["list", "object"])
async def test_an_error_code_that_is_no_number_is_the_upstreams_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, code: Any
) -> None:
    error = {"code": code, "message": "No such model"}
    fake.state.set_scenario(Scenario(status=400, error_body=envelope([error])), model=LLAMA)

    with pytest.raises(openai.BadRequestError) as raised:  # not a 500
        await sdk.chat.completions.create(model="cf-only", messages=HELLO)

    assert raised.value.message.endswith(" - No such model")
