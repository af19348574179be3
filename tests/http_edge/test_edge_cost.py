"""The cost header: `x-switchboard-cost-usd` on unary answers whose deployment has a price, read
with the openai SDK through a real edge, router and fake upstream; a stream's headers leave before
its usage is known, so it has none (its cost is on the summary's route, for gRPC callers)."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.http_edge.harness import EdgeFactory
from tests.router_service.engine.test_cost import ALPHA, BETA, priced_config

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "what does this cost"}]
HEADER = "x-switchboard-cost-usd"


@pytest.fixture
async def priced(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(priced_config(fake.base_url))


async def sdk_for(router: RouterHandle, start_edge: EdgeFactory) -> openai.AsyncOpenAI:
    # The edge tests' `start_edge` fronts a stub router: this one fronts the real one.
    edge = await start_edge(router_target=router.server.address)
    return openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-any", max_retries=0)


async def test_a_unary_answer_says_what_it_cost(
    priced: RouterHandle, start_edge: EdgeFactory
) -> None:
    async with await sdk_for(priced, start_edge) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="chain",
            messages=MESSAGES,
        )
        usage = raw.parse().usage
        assert usage is not None
        cost = usage.prompt_tokens * ALPHA["input_per_mtok"]
        cost += usage.completion_tokens * ALPHA["output_per_mtok"]
        assert float(raw.headers[HEADER]) == pytest.approx(cost / 1e6, abs=1e-8)
        assert "e" not in raw.headers[HEADER]  # fixed-point, not 1e-05

        embedded = await sdk.embeddings.with_raw_response.create(model="embedder", input="words")
        tokens = embedded.parse().usage.prompt_tokens
        expected = tokens * BETA["input_per_mtok"] / 1e6
        assert float(embedded.headers[HEADER]) == pytest.approx(expected, abs=1e-8)


async def test_a_legacy_completion_of_several_prompts_costs_them_all(
    priced: RouterHandle, start_edge: EdgeFactory
) -> None:
    async with await sdk_for(priced, start_edge) as sdk:
        one = await sdk.completions.with_raw_response.create(model="chain", prompt="first one")
        both = await sdk.completions.with_raw_response.create(
            model="chain", prompt=["first one", "first one"]
        )
        assert float(both.headers[HEADER]) == pytest.approx(2 * float(one.headers[HEADER]))


async def test_streams_and_unpriced_answers_have_no_cost_header(
    fake: FakeUpstream,
    priced: RouterHandle,
    start_router: StartRouter,
    start_edge: EdgeFactory,
) -> None:
    async with await sdk_for(priced, start_edge) as sdk:
        async with sdk.chat.completions.with_streaming_response.create(
            model="chain",
            messages=MESSAGES,
            stream=True,
        ) as stream:
            assert [line async for line in stream.iter_lines() if line]
            assert HEADER not in stream.headers
            assert stream.headers["x-switchboard-deployment"] == "alpha/model-a"
    plain = await start_router(base_config(fake.base_url))
    async with await sdk_for(plain, start_edge) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="chain",
            messages=MESSAGES,
        )
        assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
        assert HEADER not in raw.headers
