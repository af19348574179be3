"""Money budgets per client (`usd_per_day`, `usd_per_month`): the cost of its calls at the
configured prices, estimated at admission at the dearest price its model may be answered at and
settled with the cost reported (RouteInfo.cost_usd); refused as token budgets are (429
insufficient_quota, RESOURCE_EXHAUSTED / QUOTA_EXHAUSTED with RetryInfo until the period ends);
shared by replicas on Redis. Time is a ManualClock set near the periods' ends."""

from __future__ import annotations

from typing import Any

import grpc
import openai
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth._budgets import estimate_usd
from router_service.config import PriceConfig
from router_service.engine._tokens import estimate_chat_tokens
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_state
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client
from tests.router_service.auth.test_budgets import ALICE, BOB, NoonForever, at
from tests.router_service.engine import test_tool_fees as tool_fees
from tests.router_service.engine.test_cost import priced_config

# A thousandth of a dollar a token (in or out) on alpha/model-a, the chain's first deployment.
DEAR = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}


def spending(fake: FakeUpstream, **alice: Any) -> dict[str, Any]:
    config = priced_config(fake.base_url, auth={"clients": [client("alice", ALICE, **alice)]})
    config["auth"]["clients"].append(client("bob", BOB))
    config["models"]["chain"]["deployments"][0]["price"] = DEAR
    return config


async def spent_up(router: RouterHandle, key: str) -> tuple[float, grpc.aio.AioRpcError]:
    """Call until refused: the cost the admitted calls reported, and the refusal."""
    spent = 0.0
    for _ in range(50):
        try:
            answer = await router.stub.Chat(chat(text="one two three"), metadata=bearer(key))
        except grpc.aio.AioRpcError as exc:
            return spent, exc
        spent += answer.route.cost_usd
    raise AssertionError("never refused")


async def test_a_day_money_budget_refuses_until_midnight_utc(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = at(2026, 12, 4, 23, 0)
    router = await start_router(spending(fake, usd_per_day=0.05), clock=clock)
    spent, refused = await spent_up(router, ALICE)
    assert 0.05 <= spent < 0.05 + 0.02  # admitted while under; the last one may pass it
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(refused)
    assert (details.reason, details.openai_type) == ("QUOTA_EXHAUSTED", "insufficient_quota")
    assert details.retry_after_s == 3600  # until 00:00 UTC
    assert "budget of 0.05 USD per day" in details.message
    calls = len(fake.state.calls())
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert len(fake.state.calls()) == calls  # a refused call never reaches an upstream
    await router.stub.Chat(chat(), metadata=bearer(BOB))  # budgets are per client
    clock.advance(3600)  # a new day
    await router.stub.Chat(chat(), metadata=bearer(ALICE))


async def test_a_month_money_budget_renews_on_the_first(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = at(2026, 12, 31, 23, 59)
    router = await start_router(spending(fake, usd_per_month=0.02), clock=clock)
    _, refused = await spent_up(router, ALICE)
    assert details_from_rpc_error(refused).retry_after_s == 60  # until 2027-01-01 00:00 UTC
    clock.advance(60)
    await router.stub.Chat(chat(), metadata=bearer(ALICE))


async def test_the_estimate_is_the_dearest_deployment_and_a_left_stream_keeps_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # 150 tokens at the chain's dearest price (alpha's, 0.001 USD a token) is 0.15 USD: beta,
    # which would answer a fallback, is a thousand times cheaper, yet the estimate is alpha's.
    router = await start_router(spending(fake, usd_per_day=0.1), clock=NoonForever())
    fake.state.set_scenario(Scenario(stall_after_chunks=3), model="model-a")
    call = router.stub.ChatStream(chat_stream(max_tokens=140), metadata=bearer(ALICE))
    async for _ in call:
        break  # the stream is open: its first event came
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"
    assert "spent 0.1" in details_from_rpc_error(caught.value).message
    call.cancel()  # the caller leaves: the estimate stays counted
    assert await router.server._auth.calls.settle(5.0) == 0
    fake.state.clear_scenarios()
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(chat(), metadata=bearer(ALICE))
    await router.stub.Chat(chat(), metadata=bearer(BOB))  # no budget: never priced


async def test_a_call_settles_at_its_reported_cost_not_its_estimate(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Each estimate (prompt + 256 output tokens at 0.001) is above the budget; what is counted
    # is what the calls cost, so many fit, as when they are answered by the cheap deployment.
    fake.state.set_scenario(Scenario(status=503), model="model-a")  # beta/model-b answers
    config = spending(fake, usd_per_day=0.2, scopes=["chat", "admin"])
    router = await start_router(config, clock=at(2026, 12, 4, 12))
    for _ in range(5):
        answer = await router.stub.Chat(chat(text="one two three"), metadata=bearer(ALICE))
        assert answer.route.deployment == "beta/model-b"
        assert 0 < answer.route.cost_usd < 0.001
    listed = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(ALICE))
    [alice] = [c for c in listed.clients if c.name == "alice"]
    [day] = alice.spend_budgets
    assert day.period == "day" and day.limit_usd == 0.2
    assert day.used_usd == pytest.approx(5 * answer.route.cost_usd, rel=0.5)


async def test_replicas_on_redis_share_the_spend(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = spending(fake, usd_per_day=0.05)
    config["state"] = redis_state(redis_url, redis_prefix)
    clock = at(2026, 12, 4, 12)
    one = await start_router(config, clock=clock)
    other = await start_router(config, clock=clock)
    await spent_up(one, ALICE)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await other.stub.Chat(chat(), metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"


async def test_the_sdk_sees_openais_insufficient_quota(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    router = await start_router(spending(fake, usd_per_day=0.001), clock=at(2026, 12, 4, 12))
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key=ALICE, max_retries=0)
    async with sdk:
        ask: Any = {"model": "chain", "messages": [{"role": "user", "content": "one two three"}]}
        await sdk.chat.completions.create(**ask)
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.chat.completions.create(**ask)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.response.headers["retry-after"] == str(12 * 3600)


async def test_a_route_client_spends_its_declared_tokens_at_the_dearest_price(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # PickRoute's caller calls the upstream itself: its money budget counts the tokens it
    # declares, each at the dearer of the input and output prices (0.001 USD on alpha).
    config = spending(fake, usd_per_day=0.05, scopes=["route"])
    config["models"]["chain"]["deployments"][0]["price"] = {**DEAR, "output_per_mtok": 1.0}
    router = await start_router(config, clock=at(2026, 12, 4, 12))
    await router.stub.PickRoute(
        pb.PickRouteRequest(model="chain", estimated_tokens=60), metadata=bearer(ALICE)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.PickRoute(
            pb.PickRouteRequest(model="chain", estimated_tokens=1), metadata=bearer(ALICE)
        )
    assert "spent 0.06 USD" in details_from_rpc_error(caught.value).message


async def test_calls_answered_without_a_price_or_from_the_cache_spend_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Every estimate (0.26 USD at alpha's price) is above the budget: only the settlement
    # to nothing lets the next call in.
    config = spending(fake, usd_per_day=0.2, scopes=["chat", "admin"])
    del config["providers"]["beta"]["price"]
    config["cache"] = {"enabled": True}
    fake.state.set_scenario(Scenario(status=503), model="model-a")  # unpriced beta answers
    router = await start_router(config, clock=at(2026, 12, 4, 12))
    for text in ("one", "two", "two", "two"):  # the last two: answers from the cache
        answer = await router.stub.Chat(chat(text=text), metadata=bearer(ALICE))
        assert not answer.route.HasField("cost_usd")
    listed = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(ALICE))
    [alice] = [c for c in listed.clients if c.name == "alice"]
    assert alice.spend_budgets[0].used_usd == pytest.approx(0.0, abs=1e-9)


async def test_the_estimate_counts_the_hosted_tool_fees_a_call_may_pay(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Up to 3 web searches at 0.01 USD: admitted, the call counts 0.03 USD beside its tokens
    # (a few thousandths), so a budget of 0.03 is spent while it is upstream; once it answered,
    # what it cost (one search) replaces the estimate.
    config = tool_fees.config(fake.base_url)
    alice = client("alice", ALICE, usd_per_day=0.03)
    config["auth"] = {"clients": [alice, client("bob", BOB, scopes=["admin"])]}
    router = await start_router(config, clock=at(2026, 12, 4, 12))
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    ask = chat("hosted", "weather", tools=tool_fees.TOOLS, extra_json='{"max_tool_calls": 3}')
    fake.state.hold()
    first = router.stub.Chat(ask, metadata=bearer(ALICE))  # under way until released
    await fake.state.wait_for(lambda: fake.state.held == 1)
    tokens = estimate_usd([PriceConfig(**tool_fees.PRICE)], estimate_chat_tokens(ask.params), None)
    assert await spent_today(router) == pytest.approx(tokens + 0.03, rel=0.2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask, metadata=bearer(ALICE))
    assert details_from_rpc_error(caught.value).reason == "QUOTA_EXHAUSTED"
    fake.state.release()
    answer = await first
    assert await router.server._auth.calls.settle(5.0) == 0
    assert await spent_today(router) == pytest.approx(answer.route.cost_usd)
    assert answer.route.cost_usd > 0.01  # its one search


async def spent_today(router: RouterHandle) -> float:
    """Alice's spend today, as Bob (an admin without a budget) reads it."""
    listed = await router.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(BOB))
    [alice] = [c for c in listed.clients if c.name == "alice"]
    return float(alice.spend_budgets[0].used_usd)
