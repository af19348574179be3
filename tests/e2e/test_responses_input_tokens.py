"""`client.responses.input_tokens.count` end to end: the official `openai` SDK → the edge → the
router (its key, model and rpm) and never the upstream. The count is the router's own estimate
of what the same body would send to `responses.create`, its stored history included."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from clients import estimate_prompt_tokens, responses_request_from_openai
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.conftest import Open
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client, guarded_config

LIMITED, NARROW = "sk-limited-0123456789", "sk-narrow-0123456789"
TIGHT = "sk-tight-0123456789"


def estimate(body: dict[str, Any]) -> int:
    """What the router's estimator says of the chat call `body` becomes."""
    return estimate_prompt_tokens(responses_request_from_openai(body).params)


async def test_the_count_is_the_routers_estimate_and_grows_with_the_input(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    short: dict[str, Any] = {
        "model": "chain",
        "input": "How many tokens is this?",
        "instructions": "Be brief.",
    }
    longer = {**short, "input": "How many tokens is this? " * 40}
    counted = await sdk.responses.input_tokens.count(**short)
    assert counted.object == "response.input_tokens"
    assert counted.input_tokens == estimate(short) > 0
    grown = await sdk.responses.input_tokens.count(**longer)
    assert grown.input_tokens == estimate(longer) > counted.input_tokens
    assert not fake.state.records  # no upstream call


async def test_a_previous_response_is_counted_as_a_call_would_send_it(open_sdk: Open) -> None:
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="my name is Ann")
    counted = await sdk.responses.input_tokens.count(
        model="chain", input="what is my name?", previous_response_id=first.id
    )
    whole = [
        {"role": "user", "content": "my name is Ann"},
        {"role": "assistant", "content": "Echo: my name is Ann"},
        {"role": "user", "content": "what is my name?"},
    ]
    alone = estimate({"model": "chain", "input": "what is my name?"})
    assert counted.input_tokens == estimate({"model": "chain", "input": whole}) > alone


async def test_keys_models_and_rpm_hold_as_for_a_call(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    config = guarded_config(
        fake.base_url,
        client("limited", LIMITED, rpm=1),
        client("narrow", NARROW, models=["x"]),
        client("tight", TIGHT, tpm=5),
    )
    edge = await start_edge(await start_router(config, clock=ManualClock()))

    def sdk(key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0)

    body: dict[str, Any] = {"model": "chain", "input": "hello"}
    long: dict[str, Any] = {"model": "chain", "input": "many words " * 100}
    async with sdk(TIGHT) as tight:  # counting costs no tokens: tpm 5, ~280 counted twice
        for _ in range(2):
            assert (await tight.responses.input_tokens.count(**long)).input_tokens == estimate(long)
    async with sdk(LIMITED) as limited, sdk(NARROW) as narrow, sdk("sk-unknown") as unknown:
        assert (await limited.responses.input_tokens.count(**body)).input_tokens == estimate(body)
        with pytest.raises(openai.RateLimitError):  # one request a minute: this is the second
            await limited.responses.input_tokens.count(**body)
        with pytest.raises(openai.NotFoundError) as refused:
            await narrow.responses.input_tokens.count(**body)
        with pytest.raises(openai.AuthenticationError):
            await unknown.responses.input_tokens.count(**body)
    assert refused.value.body["param"] == "model"  # type: ignore[index]
    assert not fake.state.records


async def test_a_bad_body_is_a_400_naming_the_field(open_sdk: Open) -> None:
    sdk = await open_sdk()
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.responses.input_tokens.count(
            model="chain",
            input=[{"type": "nonsense"}],  # type: ignore[misc,list-item]
        )
    assert bad.value.body["param"] == "input[0].type"  # type: ignore[index]
