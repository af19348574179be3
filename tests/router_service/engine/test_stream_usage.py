"""Every stream is accounted by the usage its upstream reports, whether or not its caller asked
for it (`stream_options.include_usage`): an OpenAI-kind upstream is always asked for it, the
other kinds always send it. The caller's chunks hold it only when asked; the summary, the
client's tpm and budgets and the cost use it either way. A provider with `stream_usage: false`
is not asked: such a stream keeps the estimate-or-relayed fallback."""

from __future__ import annotations

from typing import Any

import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.engine._stream_usage import as_asked
from router_service.engine._tokens import estimate_chat_tokens
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_bedrock_sdk import GOOD, PROFILE_ID
from tests.router_service.auth.helpers import bearer, chat_stream, client, guarded_config
from tests.router_service.engine.test_cost import expected
from tests.router_service.server.client_figures import NOON, OPS

ALICE = "sk-alice-stream-usage-0123"
PRICE = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}
LIMITS = {"tpm": 1_000_000, "tokens_per_day": 1_000_000, "usd_per_day": 100.0}
# A long answer in few chunks: its real usage is far from the estimate (256 output tokens).
LONG = Scenario(content="word " * 600, chunks=6)
# Group → the upstream model the fake answers as, one per kind that streams differently.
KINDS = {
    "gpt": "gpt-x",
    "az": "gpt-az",
    "cf": "@cf/meta/llama-3.1-8b-instruct",
    "sonnet": "claude-x",
    "flash": "gemini-x",
    "converse": PROFILE_ID,
}
# The OpenAI-format kinds, whose upstreams report a stream's usage only when asked.
ASKED_OF_UPSTREAM = {"gpt", "az", "cf"}


def usage_config(fake: FakeUpstream) -> dict[str, Any]:
    """A priced deployment of each kind; `legacy`: an openai-kind one with stream_usage off."""
    config = guarded_config(
        fake.base_url, client("ops", OPS, scopes=["admin"]), client("alice", ALICE, **LIMITS)
    )
    keyed = {"keys": ["sk-upstream"], "price": PRICE}
    bedrock = {"base_url": fake.url, "region": "us-east-1", "keys": [GOOD], "price": PRICE}
    config["providers"] = {
        "oai": {"kind": "openai", "base_url": fake.base_url, **keyed},
        "old": {"kind": "openai", "base_url": fake.base_url, "stream_usage": False, **keyed},
        "claude": {"kind": "anthropic", "base_url": fake.base_url, **keyed},
        "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", **keyed},
        "aws": {"kind": "bedrock", **bedrock},
        "azure": {"kind": "azure", "base_url": fake.url, **keyed},
        "cloudflare": {
            "kind": "cloudflare",
            "base_url": f"{fake.url}/client/v4",
            "account_id": "a",
            **keyed,
        },
    }
    providers = {
        "gpt": "oai",
        "az": "azure",
        "cf": "cloudflare",
        "sonnet": "claude",
        "flash": "gem",
        "converse": "aws",
    }
    config["models"] = {
        group: {"deployments": [{"provider": providers[group], "model": model}]}
        for group, model in KINDS.items()
    }
    config["models"]["legacy"] = {"deployments": [{"provider": "old", "model": "gpt-x"}]}
    return config


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    fake.state.set_scenario(LONG)
    return await start_router(usage_config(fake), clock=ManualClock(NOON))


async def streamed(
    router: RouterHandle, model: str, *, asked: bool | None = None, batch: bool = False
) -> tuple[list[chat_pb2.ChatCompletionChunk], pb.StreamSummary]:
    """One ChatStream by alice: the chunks she read and the summary."""
    request = chat_stream(model=model, text="tell me a long story")
    request.batch_chunks = batch
    if asked is not None:
        request.params.stream_options.include_usage = asked
    chunks: list[chat_pb2.ChatCompletionChunk] = []
    summaries = []
    async for event in router.stub.ChatStream(request, metadata=bearer(ALICE)):
        kind = event.WhichOneof("event")
        if kind == "chunk":
            chunks.append(event.chunk)
        elif kind == "chunks":
            chunks += event.chunks.chunks
        elif kind == "summary":
            summaries.append(event.summary)
    [summary] = summaries
    return chunks, summary


async def alice(router: RouterHandle) -> admin_pb.ClientStatus:
    """What alice's tpm and budgets counted, once her calls' settlements ran."""
    assert await router.server._auth.calls.settle(5.0) == 0
    request = admin_pb.ListClientsRequest()
    answer: admin_pb.ListClientsResponse = await router.admin.ListClients(
        request, metadata=bearer(OPS)
    )
    [status] = [c for c in answer.clients if c.name == "alice"]
    return status


def usage_shown(chunks: list[chat_pb2.ChatCompletionChunk]) -> list[chat_pb2.Usage]:
    return [c.usage for c in chunks if c.HasField("usage") or '"usage"' in c.extra_json]


@pytest.mark.parametrize("model", list(KINDS))
@pytest.mark.parametrize("batch", [False, True])
async def test_a_stream_not_asking_for_usage_is_accounted_by_the_reported_one(
    fake: FakeUpstream, router: RouterHandle, model: str, batch: bool
) -> None:
    chunks, summary = await streamed(router, model, batch=batch)
    usage = summary.usage
    assert usage_shown(chunks) == []  # the caller did not ask: no usage chunk, no usage field
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.text for c in chunks).count("word") == 600
    assert usage.completion_tokens == 600  # the fake counts a word a token; no estimate does
    estimate = estimate_chat_tokens(chat_stream(model=model, text="tell me a long story").params)
    assert usage.total_tokens > estimate
    assert summary.route.cost_usd == pytest.approx(expected(PRICE, usage))
    standing = await alice(router)
    assert standing.minute_tokens == usage.total_tokens
    assert [b.used for b in standing.budgets] == [usage.total_tokens]
    assert [b.used_usd for b in standing.spend_budgets] == [pytest.approx(summary.route.cost_usd)]
    [call] = fake.state.calls()
    if model in ASKED_OF_UPSTREAM:  # asked of the upstream for the accounting's sake
        assert call.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", list(KINDS))
async def test_a_stream_asking_for_usage_reads_it_as_before(
    router: RouterHandle, model: str
) -> None:
    chunks, summary = await streamed(router, model, asked=True)
    last = chunks[-1]
    assert list(last.choices) == [] and last.usage == summary.usage  # OpenAI's usage chunk
    assert [c.usage for c in chunks if c.HasField("usage")] == [summary.usage]
    assert summary.route.cost_usd == pytest.approx(expected(PRICE, summary.usage))
    assert [b.used for b in (await alice(router)).budgets] == [summary.usage.total_tokens]


async def test_asked_or_not_the_same_stream_counts_the_same(router: RouterHandle) -> None:
    _, unasked = await streamed(router, "gpt", asked=False)
    first = (await alice(router)).budgets[0].used
    _, asked = await streamed(router, "gpt", asked=True)
    assert unasked.usage == asked.usage
    assert (await alice(router)).budgets[0].used == 2 * first == 2 * asked.usage.total_tokens


async def test_with_stream_usage_off_nothing_is_asked_and_the_fallback_counts(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    chunks, summary = await streamed(router, "legacy")
    [call] = fake.state.calls()
    assert "stream_options" not in call.body
    assert usage_shown(chunks) == []
    assert not summary.HasField("usage") and not summary.route.HasField("cost_usd")
    used = (await alice(router)).budgets[0].used
    # Not the upstream's count: the estimate, or the prompt's plus what was relayed.
    _, reported = await streamed(router, "gpt")
    assert used != reported.usage.total_tokens

    # The caller's own stream_options still go to such a server, and its usage chunk back.
    chunks, summary = await streamed(router, "legacy", asked=True)
    assert fake.state.calls()[-1].body["stream_options"] == {"include_usage": True}
    assert [c.usage for c in chunks if c.HasField("usage")] == [summary.usage]


async def test_a_cached_stream_replays_usage_only_to_a_caller_who_asked(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(LONG)
    config = usage_config(fake) | {"cache": {"enabled": True}}
    router = await start_router(config, clock=ManualClock(NOON))
    for asked in (None, None, True, True):  # a MISS then a HIT each: kept apart by the key
        chunks, summary = await streamed(router, "sonnet", asked=asked)
        await router.runtime.afterwork.drain()  # a stream is kept once its caller has it
        shown = usage_shown(chunks)
        assert shown == ([summary.usage] if asked else [])
        assert summary.usage.completion_tokens == 600
    assert len(fake.state.calls()) == 2


@pytest.mark.parametrize(
    ("extra", "shown"),
    [
        ('{"usage":null}', ""),
        ('{"system_fingerprint":"fp_1","usage":null}', '{"system_fingerprint":"fp_1"}'),
        ('{"usage":null,"service_tier":"default"}', '{"service_tier":"default"}'),
        ('{"x":{"a":1,"usage":null}}', '{"x":{"a":1,"usage":null}}'),  # not the chunk's own
    ],
)
def test_a_callers_chunks_lose_only_the_top_level_null_usage(extra: str, shown: str) -> None:
    chunk = chat_pb2.ChatCompletionChunk(id="c", extra_json=extra)
    chunk.choices.add().delta.text = "hi"
    [kept] = as_asked([chunk], asked=False)
    assert kept.extra_json == shown and kept.choices[0].delta.text == "hi"
