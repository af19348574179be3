"""What a call costs: the usage the upstream reported, at the configured price of the deployment
that answered (its own, else its provider's), in RouteInfo.cost_usd; absent, not 0, without a
price, without usage, and on a cache hit."""

from __future__ import annotations

from typing import Any

import pytest

from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import PriceConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream

ALPHA = {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "cached_input_per_mtok": 0.5}
BETA = {"input_per_mtok": 1.0, "output_per_mtok": 3.0}


def priced_config(fake_url: str, **sections: Any) -> dict[str, Any]:
    """`chain`: alpha/model-a priced on the deployment, beta/model-b by its provider's price."""
    config = base_config(fake_url, **sections)
    config["providers"]["beta"]["price"] = BETA
    chain = config["models"]["chain"]["deployments"]
    chain[0]["price"] = ALPHA
    config["models"]["embedder"]["deployments"][0]["price"] = {**BETA, "output_per_mtok": 0}
    return config


def expected(price: dict[str, float], usage: chat_pb2.Usage) -> float:
    cached = usage.prompt_tokens_details.cached_tokens
    cached_price = price.get("cached_input_per_mtok", price["input_per_mtok"])
    spent = (usage.prompt_tokens - cached) * price["input_per_mtok"] + cached * cached_price
    return (spent + usage.completion_tokens * price["output_per_mtok"]) / 1e6


async def test_a_unary_answer_costs_its_usage_at_its_deployments_price(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(priced_config(fake.base_url))
    answer = await router.stub.Chat(chat(text="what does this cost"))
    usage = answer.completion.usage
    assert answer.route.deployment == "alpha/model-a"
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert answer.route.HasField("cost_usd")
    assert answer.route.cost_usd == pytest.approx(expected(ALPHA, usage))


async def test_cached_prompt_tokens_are_charged_at_the_cached_price(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(cached_tokens=3), model="model-a")
    router = await start_router(priced_config(fake.base_url))
    answer = await router.stub.Chat(chat(text="a prompt long enough to have cached tokens"))
    usage = answer.completion.usage
    assert usage.prompt_tokens_details.cached_tokens == 3
    assert answer.route.cost_usd == pytest.approx(expected(ALPHA, usage))
    uncached = expected(
        ALPHA,
        chat_pb2.Usage(
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
        ),
    )
    assert answer.route.cost_usd < uncached


async def test_without_a_cached_price_cached_tokens_cost_the_input_price(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(status=503), model="model-a")
    fake.state.set_scenario(Scenario(cached_tokens=2), model="model-b")
    router = await start_router(priced_config(fake.base_url))
    answer = await router.stub.Chat(chat(text="a prompt of several words to cache"))
    usage = answer.completion.usage
    assert answer.route.deployment == "beta/model-b"  # priced by its provider
    assert usage.prompt_tokens_details.cached_tokens == 2
    assert answer.route.cost_usd == pytest.approx(expected(BETA, usage))


async def test_a_stream_states_its_cost_on_the_summary(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(priced_config(fake.base_url))
    request = chat_stream(text="stream me")
    request.params.stream_options.include_usage = True
    events = [event async for event in router.stub.ChatStream(request)]
    route = next(e.route for e in events if e.WhichOneof("event") == "route")
    summary = next(e.summary for e in events if e.WhichOneof("event") == "summary")
    assert not route.HasField("cost_usd")  # sent before the usage is known
    assert summary.usage.completion_tokens > 0
    assert summary.route.cost_usd == pytest.approx(expected(ALPHA, summary.usage))


async def test_embeddings_cost_their_input_tokens(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(priced_config(fake.base_url))
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="embed these words")
    answer = await router.stub.Embed(pb.EmbedRequest(params=params))
    tokens = answer.result.usage.prompt_tokens
    assert tokens > 0
    assert answer.route.cost_usd == pytest.approx(tokens * BETA["input_per_mtok"] / 1e6)


async def test_no_price_or_no_usage_means_no_cost_not_zero(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> float:
        raise AssertionError("an unpriced deployment computed a cost")

    router = await start_router(base_config(fake.base_url))
    monkeypatch.setattr(PriceConfig, "cost_usd", never)  # unpriced: the None check alone
    answer = await router.stub.Chat(chat())
    assert answer.completion.usage.total_tokens > 0
    assert not answer.route.HasField("cost_usd")
    monkeypatch.undo()

    fake.state.set_scenario(Scenario(no_usage=True), model="model-a")
    priced = await start_router(priced_config(fake.base_url))
    answer = await priced.stub.Chat(chat())
    assert not answer.completion.HasField("usage")
    assert not answer.route.HasField("cost_usd")


async def test_an_answer_from_the_response_cache_costs_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(priced_config(fake.base_url, cache={"enabled": True}))
    fresh = await router.stub.Chat(chat(text="same question"))
    kept = await router.stub.Chat(chat(text="same question"))
    assert fresh.route.HasField("cost_usd")
    assert kept.route.cache == 1  # CACHE_STATUS_HIT
    assert not kept.route.HasField("cost_usd")
