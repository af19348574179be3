"""Token budgets per client (`tokens_per_day`, `tokens_per_month`): counted from the calls' usage
(the estimate until a call reports), refused with 429 insufficient_quota until the period ends,
shared by replicas on Redis, per client. Time is a ManualClock set near the periods' ends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import openai
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock, SystemClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_state
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

ALICE = "sk-alice-budget-0123"
BOB = "sk-bob-budget-0123"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> ManualClock:
    return ManualClock(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp())


class NoonForever(SystemClock):
    """Real waits (a stream's timers run), and a wall clock that stays at one noon: the day
    never turns during the test."""

    def now(self) -> float:
        return dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC).timestamp()


async def used_up(router: RouterHandle, key: str) -> tuple[int, grpc.aio.AioRpcError]:
    """Call until refused: the tokens the admitted calls reported, and the refusal."""
    spent = 0
    for _ in range(50):
        try:
            answer = await router.stub.Chat(chat(text="one two three"), metadata=bearer(key))
        except grpc.aio.AioRpcError as exc:
            return spent, exc
        spent += answer.completion.usage.total_tokens
    raise AssertionError("never refused")


def budgeted(fake: FakeUpstream, **alice: Any) -> dict[str, Any]:
    return guarded_config(fake.base_url, client("alice", ALICE, **alice), client("bob", BOB))


async def test_a_day_budget_refuses_until_midnight_utc(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = at(2026, 12, 4, 23, 0)
    router = await start_router(budgeted(fake, tokens_per_day=20), clock=clock)
    spent, refused = await used_up(router, ALICE)
    assert 20 <= spent < 20 + 8  # admitted while under the budget; the last one may pass it
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(refused)
    assert (details.reason, details.openai_type) == ("QUOTA_EXHAUSTED", "insufficient_quota")
    assert details.openai_code == "insufficient_quota"
    assert details.retry_after_s == 3600  # until 00:00 UTC
    assert "budget of 20 tokens per day" in details.message
    calls = len(fake.state.calls())
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert len(fake.state.calls()) == calls  # a refused call never reaches an upstream
    await router.stub.Chat(chat(), metadata=bearer(BOB))  # budgets are per client
    clock.advance(3600)  # a new day
    await router.stub.Chat(chat(), metadata=bearer(ALICE))


async def test_a_month_budget_renews_on_the_first(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = at(2026, 12, 31, 23, 59)
    router = await start_router(budgeted(fake, tokens_per_month=10), clock=clock)
    _, refused = await used_up(router, ALICE)
    assert details_from_rpc_error(refused).retry_after_s == 60  # until 2027-01-01 00:00 UTC
    clock.advance(60)
    await router.stub.Chat(chat(), metadata=bearer(ALICE))


async def test_an_open_stream_counts_its_estimate_until_it_reports(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The estimate counts max_tokens in full from admission; a stream that never reports its
    # usage (its caller left) keeps it.
    router = await start_router(budgeted(fake, tokens_per_day=100), clock=NoonForever())
    fake.state.set_scenario(Scenario(stall_after_chunks=3))  # the usage would come at the end
    call = router.stub.ChatStream(chat_stream(max_tokens=140), metadata=bearer(ALICE))
    async for _ in call:
        break  # the stream is open: its first event came
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"
    call.cancel()  # the caller leaves: the estimate stays counted
    fake.state.clear_scenarios()
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(), metadata=bearer(ALICE))


async def test_the_estimate_counts_every_choice_of_n(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # n choices are n answers upstream: an abandoned stream with n=4 counted one max_tokens,
    # so n multiplied what a budget (or tpm) let through unreported.
    router = await start_router(budgeted(fake, tokens_per_day=100), clock=NoonForever())
    fake.state.set_scenario(Scenario(stall_after_chunks=3))
    call = router.stub.ChatStream(chat_stream(max_tokens=30, n=4), metadata=bearer(ALICE))
    async for _ in call:
        break
    call.cancel()  # the caller leaves: 4 × 30 stay counted
    fake.state.clear_scenarios()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"


@pytest.mark.parametrize("leaves", [False, True])
@pytest.mark.parametrize("silent", ["stream_usage off", "a server that reports none"])
async def test_a_stream_without_usage_counts_what_it_relayed(
    fake: FakeUpstream, start_router: StartRouter, leaves: bool, silent: str
) -> None:
    # No usage reported (the provider is told not to ask for it, or its server sends none even
    # asked), no max_tokens: the budget kept the estimate (256 output tokens) of an answer of
    # ~1,250 tokens, whether the stream ended or its caller left once it had the text.
    config = budgeted(fake, tokens_per_day=600)
    if silent == "stream_usage off":
        config["providers"]["alpha"]["stream_usage"] = False
    router = await start_router(config, clock=NoonForever())
    no_usage = silent != "stream_usage off"
    fake.state.set_scenario(Scenario(content="word " * 1000, chunks=20, no_usage=no_usage))
    call = router.stub.ChatStream(chat_stream(), metadata=bearer(ALICE))
    received = 0
    async for event in call:
        received += event.WhichOneof("event") in ("chunk", "chunks")
        if leaves and received == 19:
            call.cancel()
            break
    assert await router.server._auth.calls.settle(5.0) == 0  # the handler's cleanup is done
    sent = [c.body.get("stream_options") for c in fake.state.calls()]
    assert sent == ([None] if silent == "stream_usage off" else [{"include_usage": True}])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"


async def test_an_answer_without_usage_counts_what_it_carried(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A server that sends no `usage`: the budget kept the estimate (256 output tokens without
    # max_tokens) of an answer of ~1,250 tokens.
    router = await start_router(budgeted(fake, tokens_per_day=600), clock=NoonForever())
    fake.state.set_scenario(Scenario(content="word " * 1000, no_usage=True))
    answer = await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert answer.completion.usage.total_tokens == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"


async def test_replicas_on_redis_share_a_budget(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = budgeted(fake, tokens_per_day=20)
    config["state"] = redis_state(redis_url, redis_prefix)
    clock = at(2026, 12, 4, 12)
    one = await start_router(config, clock=clock)
    other = await start_router(config, clock=clock)
    await used_up(one, ALICE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await other.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"


async def test_the_sdk_sees_openais_insufficient_quota(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    router = await start_router(budgeted(fake, tokens_per_day=5), clock=at(2026, 12, 4, 12))
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key=ALICE, max_retries=0)
    async with sdk:
        ask: Any = {"model": "chain", "messages": [{"role": "user", "content": "one two three"}]}
        await sdk.chat.completions.create(**ask)
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.chat.completions.create(**ask)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert caught.value.response.headers["retry-after"] == str(12 * 3600)


async def test_a_call_the_router_refuses_as_invalid_spends_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A chat no upstream body can be written from is refused by its handler, after the gate
    # counted its estimate: that estimate (max_tokens 500) stayed counted, so two such 400s
    # spent a budget of 600 and the caller's next, valid, call got 429 insufficient_quota.
    router = await start_router(budgeted(fake, tokens_per_day=600), clock=NoonForever())
    invalid = chat(max_tokens=500)
    del invalid.params.messages[:]
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.stub.Chat(invalid, metadata=bearer(ALICE))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        streamed = router.stub.ChatStream(
            pb.ChatStreamRequest(params=invalid.params), metadata=bearer(ALICE)
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await anext(aiter(streamed))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not fake.state.calls()  # none reached an upstream: none spent anything
    await router.stub.Chat(chat(max_tokens=500), metadata=bearer(ALICE))


async def test_a_call_no_deployment_can_express_spends_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A chat whose stops past the upstream's cap the router will not enforce (one too long) is
    # passed over by every deployment before a key is leased: INVALID_ARGUMENT, no upstream
    # reached, as a chat no body can be written from. Its estimate (max_tokens 500) stayed
    # counted: two such 400s spent a budget of 600 and the next valid call got 429.
    router = await start_router(budgeted(fake, tokens_per_day=600), clock=NoonForever())
    inexpressible = chat(max_tokens=500)
    stops = ["a", "b", "c", "d", "e" * 300]  # an OpenAI deployment sends 4; the 5th: too long
    inexpressible.params.stop_list.values.extend(stops)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.stub.Chat(inexpressible, metadata=bearer(ALICE))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        streamed = router.stub.ChatStream(
            pb.ChatStreamRequest(params=inexpressible.params), metadata=bearer(ALICE)
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await anext(aiter(streamed))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not fake.state.calls()  # none reached an upstream: none spent anything
    await router.stub.Chat(chat(max_tokens=500), metadata=bearer(ALICE))
