"""Workers AI's 3040 "Out of capacity" (a 429: "No more data centers to forward the request
to", https://developers.cloudflare.com/workers-ai/platform/errors/) is Workers AI's capacity for
the model, met far below any rate limit: not a key's pace. The deployment cools for everyone and
the group's next deployment answers; the provider's other keys are not tried (each would meet
the same), and none is cooled as rate-limited. The v4 API's own rate limit (971, a 429) is the
key's, as before."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._dialects import envelope
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_cloudflare_models import LLAMA, cloudflare_config
from tests.e2e.test_reasoning_sdk import HELLO

OUT_OF_CAPACITY = {"code": 3040, "message": "Capacity temporarily exceeded, please try again."}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(cloudflare_config(fake, ["cf-1", "cf-2"]))


async def text_of(answer: Any, streaming: bool) -> str:
    if not streaming:
        return str(answer.choices[0].message.content)
    return "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])


@pytest.mark.parametrize("wrapped", [False, True], ids=["http-error", "in-a-200"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_out_of_capacity_moves_on_without_trying_other_keys(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool, wrapped: bool
) -> None:
    scenario = (
        Scenario(wrapped_error=OUT_OF_CAPACITY)
        if wrapped
        else Scenario(status=429, error_body=envelope([OUT_OF_CAPACITY]))
    )
    fake.state.set_scenario(scenario, model=LLAMA)

    for _ in range(2):  # the call that met it, and one while the deployment cools
        raw = await sdk.chat.completions.with_raw_response.create(
            model="cf-then-gpt", messages=HELLO, stream=streaming
        )
        assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
        assert await text_of(raw.parse(), streaming) == "Echo: hello"

    assert [c.model for c in fake.state.calls()] == [LLAMA, "model-a", "model-a"]


async def test_out_of_capacity_alone_is_a_503_not_a_rate_limit(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    error = envelope([OUT_OF_CAPACITY])
    fake.state.set_scenario(Scenario(status=429, error_body=error), model=LLAMA)

    with pytest.raises(openai.InternalServerError) as raised:
        await sdk.chat.completions.create(model="cf-only", messages=HELLO)

    assert raised.value.status_code == 503
    assert fake.state.count(model=LLAMA) == 1  # not once per key


async def test_the_v4_apis_rate_limit_is_the_keys(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30"), key="cf-1")

    for _ in range(2):  # the other key serves; the limited one rests
        answer = await sdk.chat.completions.create(model="cf-only", messages=HELLO)
        assert answer.choices[0].message.content == "Echo: hello"

    assert fake.state.count(key="cf-1") <= 1 and fake.state.count(key="cf-2") >= 2
