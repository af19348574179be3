"""Prompt-cache writes: an Anthropic (or Bedrock) upstream's cache writes reach the gRPC Usage as
parts of prompt_tokens (`prompt_tokens_details.cache_write_tokens`, the 1-hour part apart), are
charged at `cache_write_per_mtok` / `cache_write_1h_per_mtok` (unset: the input price, the figure
before they were counted), and the money budget counts that cost."""

from __future__ import annotations

from typing import Any

import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_bedrock_sdk import GOOD, PROFILE_ID, bedrock_config
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client
from tests.router_service.auth.test_budgets import ALICE, at

# Anthropic's ratios: reads at 0.1x the input price, writes at 1.25x (5 minutes) and 2x (1 hour).
CLAUDE = {
    "input_per_mtok": 3.0,
    "output_per_mtok": 15.0,
    "cached_input_per_mtok": 0.3,
    "cache_write_per_mtok": 3.75,
    "cache_write_1h_per_mtok": 6.0,
}
OLD = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}  # a price list from before cache writes
# 2 tokens read from the cache, 8 written to it (3 of them for an hour), beside the prompt's own.
WRITES = Scenario(cached_tokens=2, cache_write_tokens=8, cache_write_1h_tokens=3)
TEXT = "one two three four five"


def claude_config(fake_url: str, **sections: Any) -> dict[str, Any]:
    """`sonnet` on an Anthropic provider priced for cache writes, `sonnet-old` on one unpriced."""
    config = base_config(fake_url, **sections)
    for name, price in (("claude", CLAUDE), ("claude-old", OLD)):
        provider = {"kind": "anthropic", "base_url": fake_url, "keys": ["sk-ant"], "price": price}
        config["providers"][name] = provider
    config["models"]["sonnet"] = {"deployments": [{"provider": "claude", "model": "claude-x"}]}
    config["models"]["sonnet-old"] = {
        "deployments": [{"provider": "claude-old", "model": "claude-x"}]
    }
    return config


def details(usage: chat_pb2.Usage) -> tuple[int, int, int]:
    d = usage.prompt_tokens_details
    return d.cached_tokens, d.cache_write_tokens, d.cache_write_1h_tokens


async def uncached_prompt(router: RouterHandle, fake: FakeUpstream) -> int:
    """The prompt's tokens when nothing is read from or written to a cache."""
    fake.state.clear_scenarios()
    answer = await router.stub.Chat(chat(model="sonnet", text=TEXT))
    assert details(answer.completion.usage) == (0, 0, 0)
    fake.state.set_scenario(WRITES, model="claude-x")
    return int(answer.completion.usage.prompt_tokens)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(claude_config(fake.base_url))


async def test_anthropic_cache_writes_are_parts_of_the_prompt_priced_as_writes(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    own = await uncached_prompt(router, fake)
    answer = await router.stub.Chat(chat(model="sonnet", text=TEXT))
    usage = answer.completion.usage
    assert details(usage) == (2, 8, 3)
    assert usage.prompt_tokens == own + 2 + 8  # OpenAI's meaning: every input token
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    spent = own * 3.0 + 2 * 0.3 + 5 * 3.75 + 3 * 6.0 + usage.completion_tokens * 15.0
    assert answer.route.cost_usd == pytest.approx(spent / 1e6)


async def test_without_write_prices_writes_cost_the_input_price_as_before(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    fake.state.set_scenario(WRITES, model="claude-x")
    answer = await router.stub.Chat(chat(model="sonnet-old", text=TEXT))
    usage = answer.completion.usage
    assert details(usage) == (2, 8, 3)
    old = usage.prompt_tokens * 3.0 + usage.completion_tokens * 15.0
    assert answer.route.cost_usd == pytest.approx(old / 1e6)


async def test_a_streamed_answer_keeps_the_writes_of_its_message_start(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    own = await uncached_prompt(router, fake)
    request = chat_stream(model="sonnet", text=TEXT)
    request.params.stream_options.include_usage = True
    events = [event async for event in router.stub.ChatStream(request)]
    [summary] = [e.summary for e in events if e.WhichOneof("event") == "summary"]
    [chunk] = [
        e.chunk for e in events if e.WhichOneof("event") == "chunk" and e.chunk.usage.ByteSize()
    ]
    for usage in (summary.usage, chunk.usage):
        assert details(usage) == (2, 8, 3)
        assert usage.prompt_tokens == own + 10
    spent = own * 3.0 + 2 * 0.3 + 5 * 3.75 + 3 * 6.0 + summary.usage.completion_tokens * 15.0
    assert summary.route.cost_usd == pytest.approx(spent / 1e6)


@pytest.mark.parametrize("stream", [False, True])
async def test_bedrock_cache_writes_and_their_hour_are_mapped(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    router = await start_router(bedrock_config(fake, {"iam": [GOOD]}))
    fake.state.set_scenario(WRITES, model=PROFILE_ID)
    if stream:
        request = chat_stream(model="iam-chat", text=TEXT)
        request.params.stream_options.include_usage = True
        events = [event async for event in router.stub.ChatStream(request)]
        [usage] = [e.summary.usage for e in events if e.WhichOneof("event") == "summary"]
    else:
        usage = (await router.stub.Chat(chat(model="iam-chat", text=TEXT))).completion.usage
    assert details(usage) == (2, 8, 3)
    sent = fake.state.last()
    assert sent is not None and sent.model == PROFILE_ID


async def test_the_money_budget_counts_the_writes_at_their_price(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    alice = client("alice", ALICE, usd_per_day=1.0, scopes=["chat", "admin"])
    config = claude_config(fake.base_url, auth={"clients": [alice]})
    router = await start_router(config, clock=at(2026, 12, 4, 12))
    fake.state.set_scenario(WRITES, model="claude-x")
    costs = []
    for _ in range(3):
        answer = await router.stub.Chat(chat(model="sonnet", text=TEXT), metadata=bearer(ALICE))
        costs.append(answer.route.cost_usd)
    usage = answer.completion.usage
    at_input_price = (usage.prompt_tokens * 3.0 + usage.completion_tokens * 15.0) / 1e6
    assert costs[-1] > at_input_price  # the writes' premium outweighs the reads' discount
    assert await router.server._auth.calls.settle(5.0) == 0
    listed = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(ALICE))
    [standing] = [c for c in listed.clients if c.name == "alice"]
    assert standing.spend_budgets[0].used_usd == pytest.approx(sum(costs))
