"""Workers AI's answers about the deployment's model itself (5007 "No such model … or task",
a 400; 3042 "The model name is invalid", a 404; 5005 "The model … does not support LoRa
inference", a 405: https://developers.cloudflare.com/workers-ai/platform/errors/) are what this
deployment cannot do, not the caller's request: the group's next deployment answers, unary and
streamed, as an HTTP error or wrapped in a 200. None of them is a key's: no key is set aside."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._dialects import envelope
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_reasoning_sdk import HELLO

LLAMA = "@cf/meta/llama-3.1-8b-instruct"
NO_SUCH_MODEL = (400, 5007, f"No such model {LLAMA} or task")
INVALID_MODEL_ID = (404, 3042, "The model name is invalid")
NO_LORA = (405, 5005, f"The model {LLAMA} does not support LoRa inference")


def cloudflare_config(fake: FakeUpstream, keys: list[str]) -> dict[str, Any]:
    """The fake's Cloudflare account (`keys`) serving LLAMA: `cf-then-gpt` (alpha's model-a
    next) and `cf-only`."""
    config = base_config(fake.base_url)
    config["providers"]["cf"] = {
        "kind": "cloudflare",
        "base_url": f"{fake.url}/client/v4",
        "account_id": "acct-123",
        "keys": keys,
    }
    deployments = [{"provider": "cf", "model": LLAMA}, {"provider": "alpha", "model": "model-a"}]
    config["models"]["cf-then-gpt"] = {"deployments": deployments}
    config["models"]["cf-only"] = {"deployments": deployments[:1]}
    return config


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(cloudflare_config(fake, ["cf-token"]))


def scenario(status: int, code: int, message: str, wrapped: bool) -> Scenario:
    error = {"code": code, "message": message}
    if wrapped:  # a 200 whose body is the failure envelope
        return Scenario(wrapped_error=error)
    return Scenario(status=status, error_body=envelope([error]))


@pytest.mark.parametrize("wrapped", [False, True], ids=["http-error", "in-a-200"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    "refusal", [NO_SUCH_MODEL, INVALID_MODEL_ID, NO_LORA], ids=["5007", "3042", "5005"]
)
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


@pytest.mark.parametrize("wrapped", [False, True], ids=["http-error", "in-a-200"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_model_id_workers_ai_does_not_have_cools_the_deployment(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    streaming: bool,
    wrapped: bool,
) -> None:
    """3042 is the deployment's model id, wrong for every caller and every key: the group's
    next deployment answers, and the deployment is cooled for everyone (UPSTREAM_ERROR at
    deployment scope, as Azure's DeploymentNotFound), so the requests that follow do not each
    waste a call on it; once the cooldown is over it is tried again."""
    clock = ManualClock()
    router = await start_router(cloudflare_config(fake, ["cf-token"]), clock=clock)
    edge = await start_edge(router)
    fake.state.set_scenario(scenario(*INVALID_MODEL_ID, wrapped), model=LLAMA)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:

        async def served_by(n: int) -> str:  # a new conversation each: none sticks
            said: Any = [{"role": "user", "content": f"hello {n}"}]
            raw = await sdk.chat.completions.with_raw_response.create(
                model="cf-then-gpt", messages=said, stream=streaming
            )
            answer: Any = raw.parse()
            if streaming:
                _ = [c async for c in answer]
            return str(raw.headers["x-switchboard-deployment"])

        assert [await served_by(1), await served_by(2)] == ["alpha/model-a"] * 2
        assert [c.model for c in fake.state.calls()] == [LLAMA, "model-a", "model-a"]
        clock.advance(router.runtime.config.cooldowns.transient_s + 1)
        assert await served_by(3) == "alpha/model-a"

    assert [c.model for c in fake.state.calls()][3:] == [LLAMA, "model-a"]


@pytest.mark.parametrize("wrapped", [False, True], ids=["http-error", "in-a-200"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_model_id_workers_ai_does_not_have_is_no_keys_denial(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    streaming: bool,
    wrapped: bool,
) -> None:
    """With no deployment left, the caller hears the group could not be served, saying the
    deployment's model is wrong (for the operator to fix), not the 403 `model_denied` that
    tells an operator to grant a key the model; the key is not set aside for it, so the model
    serves again once the id is right (here: once Workers AI answers) and its cooldown ended."""
    clock = ManualClock()
    router = await start_router(cloudflare_config(fake, ["cf-token"]), clock=clock)
    edge = await start_edge(router)
    fake.state.set_scenario(scenario(*INVALID_MODEL_ID, wrapped), model=LLAMA)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        with pytest.raises(openai.APIStatusError) as raised:
            answer: Any = await sdk.chat.completions.create(
                model="cf-only", messages=HELLO, stream=streaming
            )
            async for _ in answer:
                pass
        fake.state.remove_scenario(model=LLAMA)
        clock.advance(router.runtime.config.cooldowns.transient_s + 1)
        served = await sdk.chat.completions.create(model="cf-only", messages=HELLO)

    assert raised.value.status_code == 503
    body: Any = raised.value.body
    assert body["code"] == "upstream_error"
    assert (
        "Cloudflare Workers AI has no such model (3042: The model name is invalid): the "
        "deployment's `model` is not one of the provider's models."
    ) in body["message"]
    assert served.choices[0].message.content == "Echo: hello"


async def test_lora_the_model_lacks_is_the_callers_400_when_no_deployment_has_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(scenario(*NO_LORA, wrapped=False), model=LLAMA)

    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(
            model="cf-only", messages=HELLO, extra_body={"lora": "my-adapter"}
        )

    assert "does not support LoRa inference" in raised.value.message
