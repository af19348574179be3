"""What one replica learns or holds, the other honours (issue #9, two replicas on one Redis): a
key's 429 and exhausted quota, a queue for a busy key, a caller's token window and streams, a
conversation's bans; an operator's enable lifting a provider throttle."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import advance_until_done, eventually
from tests.replicas.harness import ask, replica_config, set_enabled, two_replicas

CLIENT = (("authorization", "Bearer sk-client-app"),)


@pytest.fixture
def config(fake: FakeUpstream, redis_url: str, redis_prefix: str) -> dict[str, Any]:
    """The replicas' config (harness.replica_config) on the suite's Redis, this test's prefix."""
    return replica_config(fake.base_url, redis_url, redis_prefix)


def keys_used(fake: FakeUpstream, since: int) -> set[str]:
    return {r.key for r in fake.state.calls()[since:]}


@pytest.mark.parametrize(
    "failure", [Scenario.rate_limited(retry_after="30"), Scenario.quota_exhausted()]
)
async def test_a_key_that_failed_on_one_replica_is_left_alone_by_the_other(
    failure: Scenario,
    fake: FakeUpstream,
    start_router: StartRouter,
    config: dict[str, Any],
) -> None:
    a, b = await two_replicas(start_router, config)
    for _ in range(2):  # B reads k1's health once: from then on from its read cache
        await b.stub.Chat(ask())
    fake.state.set_scenario(failure, key="k1")
    while fake.state.count(key="k1") < 2:  # A's least recently used key comes round to k1
        await a.stub.Chat(ask())
    fake.state.clear_scenarios()  # k1 works again: only the shared cooldown or disable keeps B off

    seen = len(fake.state.calls())
    for _ in range(6):
        await b.stub.Chat(ask())
    assert keys_used(fake, seen) == {"k2"}


async def test_a_caller_queued_on_one_replica_for_a_key_another_holds_is_told_when_to_retry(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    config["providers"]["alpha"].update(keys=[{"key": "k1", "max_in_flight": 1}], queue_timeout_s=2)
    clock = ManualClock(time.time())  # B's wait for the key (queue_timeout_s) ends on it
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario(latency_ms=30_000), key="k1")
    held = asyncio.ensure_future(a.stub.Chat(ask()))
    await fake.state.wait_for(lambda: fake.state.in_flight == 1)
    try:
        queued = asyncio.ensure_future(b.stub.Chat(ask()))
        await advance_until_done(clock, 0.5, queued, what="B's caller refused")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await queued
    finally:
        held.cancel()
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.retry_after_s is not None and details.retry_after_s > 0
    assert fake.state.count(key="k1") == 1  # B never called the key A held


async def test_a_caller_queued_on_one_replica_gets_the_key_another_gives_back(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    config["providers"]["alpha"].update(keys=[{"key": "k1", "max_in_flight": 1}], queue_timeout_s=5)
    a, b = await two_replicas(start_router, config)
    fake.state.set_scenario(Scenario(latency_ms=30_000), key="k1")
    held = asyncio.ensure_future(a.stub.Chat(ask()))
    await fake.state.wait_for(lambda: fake.state.in_flight == 1)
    fake.state.clear_scenarios()
    queued = asyncio.ensure_future(b.stub.Chat(ask()))

    async def b_waits() -> bool:  # polled: joining the queue is no event one can wait on
        return b.runtime.pools["alpha"].waiting == 1

    await eventually(b_waits, what="B's caller in B's queue")
    held.cancel()  # A gives k1 back: B hears nothing of it, its waiter tries again by itself
    assert (await queued).completion.choices[0].message.text == "Echo: hi"
    assert fake.state.count(key="k1") == 2


async def test_a_callers_tokens_per_minute_are_counted_across_replicas(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """A window that holds any tokens refuses a call that would go over: B, whose own window
    is empty, refuses the caller once A has counted its call."""
    config["auth"] = {"clients": [{"name": "app", "key": "sk-client-app", "tpm": 10}]}
    a, b = await two_replicas(start_router, config)
    response = await a.stub.Chat(ask(), metadata=CLIENT)
    assert response.completion.usage.total_tokens > 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask(), metadata=CLIENT)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).retry_after_s is not None
    assert fake.state.count() == 1


async def test_a_callers_concurrent_streams_are_counted_across_replicas(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    config["auth"] = {
        "clients": [{"name": "app", "key": "sk-client-app", "max_concurrent_streams": 1}]
    }
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    stream = a.stub.ChatStream(pb.ChatStreamRequest(params=ask().params), metadata=CLIENT)
    async for message in stream:
        if message.WhichOneof("event") == "chunk":
            break
    refused = b.stub.ChatStream(pb.ChatStreamRequest(params=ask().params), metadata=CLIENT)
    # B waits for one of the client's streams to end on B (none does), then refuses.
    refusing = asyncio.ensure_future(anext(aiter(refused)))
    await advance_until_done(clock, 0.5, refusing, what="B refused after its wait for a slot")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await refusing
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stream.cancel()
    fake.state.clear_scenarios()

    # Polled: A gives the slot back as its handler sees the cancel, which the caller cannot see.
    async def released() -> bool:
        return await b.runtime.store.held(["client:app:streams"]) == [0]

    await eventually(released, what="A's stream slot given back")
    call = b.stub.ChatStream(pb.ChatStreamRequest(params=ask().params), metadata=CLIENT)
    assert [m.WhichOneof("event") async for m in call][-1] == "summary"


async def test_a_conversations_ban_on_one_replica_holds_on_the_other(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    for session in ("s1", "s2"):  # B reads both conversations' rules once, then from its cache
        assert (await b.stub.Chat(ask("chain", session))).route.deployment == "alpha/model-a"
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    moved = await a.stub.Chat(ask("chain", "s1"))
    assert moved.route.deployment == "beta/model-b"  # alpha failed s1: banned for it

    clock.advance(20)  # past alpha's global cooldown (15 s), within s1's ban (600 s)
    assert (await b.stub.Chat(ask("chain", "s2"))).route.deployment == "alpha/model-a"
    for _ in range(3):
        assert (await b.stub.Chat(ask("chain", "s1"))).route.deployment == "beta/model-b"


async def test_routing_statistics_of_both_replicas_add_up(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """Each replica writes its results within `stats_flush_s`, a quiet one too: the admin view
    of either counts what both served."""
    config["routing"] = {"stats_flush_s": 0.05}
    config["models"]["b"] = {"deployments": [{"provider": "beta", "model": "model-b"}]}
    a, b = await two_replicas(start_router, config)
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    await a.stub.Chat(ask("chain"))  # model-a fails (and cools), model-b serves
    for replica in (a, a, b, b, b):
        await replica.stub.Chat(ask("b"))

    async def counted(replica: RouterHandle) -> dict[str, tuple[int, int]]:
        stats = await replica.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
        return {d.deployment: (d.successes, d.failures) for d in stats.deployments}

    want = {"alpha/model-a": (0, 1), "beta/model-b": (6, 0)}

    async def add_up() -> bool:  # polled: B's timer writes them, with no event seen from A
        return await counted(a) == want

    await eventually(add_up, what="A's view counting B's results")
    assert await counted(b) == want


@pytest.mark.parametrize(
    "failure", [Scenario.invalid_key(style="openai"), Scenario.quota_exhausted()]
)
async def test_a_key_disabled_by_a_replica_that_went_away_is_probed_back_by_another(
    failure: Scenario,
    fake: FakeUpstream,
    start_router: StartRouter,
    config: dict[str, Any],
) -> None:
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(failure, key="k1")
    while not fake.state.count(key="k1"):
        await a.stub.Chat(ask())
    await a.server.shutdown(grace=0)  # the replica that disabled k1 (and probed it) is gone
    fake.state.clear_scenarios()  # k1 works again
    await set_enabled(b, "k2", False)  # an operator's disable is left alone

    probe_s = b.runtime.config.key_health.probe_initial_s
    await b.runtime.prober.tick()  # B takes k1 over, with a probe backoff of its own
    clock.advance(probe_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1
    seen = len(fake.state.calls())
    for _ in range(3):
        await b.stub.Chat(ask())
    assert keys_used(fake, seen) == {"k1"}  # back, and k2 still off


async def test_keys_rate_limited_on_different_replicas_throttle_their_model_together(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """alpha has three keys: two meeting a 429 for model-a within `provider_throttle_window_s`
    is the account's limit for model-a reached, though A met one and B the other: its third key
    is left alone for model-a. The limit is per model (as OpenAI's and most providers' are):
    model-x is served on, by any key."""
    config["providers"]["alpha"]["keys"] = ["k1", "k2", "k3"]
    config["models"]["x"] = {"deployments": [{"provider": "alpha", "model": "model-x"}]}
    a, b = await two_replicas(start_router, config)
    limited = Scenario.rate_limited(retry_after="30")
    fake.state.set_scenario(limited, key="k1", model="model-a")
    while not fake.state.count(key="k1"):
        await a.stub.Chat(ask())  # k1's 429, then another key serves
    fake.state.clear_scenarios()
    fake.state.set_scenario(limited, key="k2", model="model-a")
    k2_calls = fake.state.count(key="k2")  # one served A's call, maybe
    while fake.state.count(key="k2") == k2_calls:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await b.stub.Chat(ask())  # k1 is cooling for model-a: B comes round to k2's 429
    fake.state.clear_scenarios()

    k3_calls = fake.state.count(key="k3")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await a.stub.Chat(ask())  # model-a is throttled at alpha: k3 is not tried for it
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count(key="k3") == k3_calls
    served = await a.stub.Chat(ask("x"))  # another model: its own limit, not reached
    assert served.route.provider == "alpha"

    # An enable on B: k3's (none of its 429s made the throttle) leaves it, on A too; k1's lifts
    # it (its wait is over), and A serves model-a on it at once.
    k3_calls = fake.state.count(key="k3")  # it may have served model-x
    await set_enabled(b, "k3", True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await a.stub.Chat(ask())
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count(key="k3") == k3_calls
    await set_enabled(b, "k1", True)
    k1_calls = fake.state.count(key="k1")
    assert (await a.stub.Chat(ask())).route.provider == "alpha"
    assert fake.state.count(key="k1") == k1_calls + 1


async def test_keys_rate_limited_for_different_models_throttle_nothing(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """k1's 429 for model-a on A and k2's for model-x on B are two models' own limits, not the
    account throttled: a third model is served, and each model by the other key."""
    for model in ("x", "y"):
        config["models"][model] = {
            "deployments": [{"provider": "alpha", "model": f"model-{model}"}]
        }
    a, b = await two_replicas(start_router, config)
    limited = Scenario.rate_limited(retry_after="30")
    fake.state.set_scenario(limited, key="k1", model="model-a")
    while not fake.state.count(key="k1"):
        await a.stub.Chat(ask())  # k1's 429 for model-a, then k2 serves
    fake.state.clear_scenarios()
    fake.state.set_scenario(limited, key="k2", model="model-x")
    while not fake.state.count(key="k2", model="model-x"):
        await b.stub.Chat(ask("x"))  # k2's 429 for model-x, then k1 serves
    fake.state.clear_scenarios()

    assert (await a.stub.Chat(ask("y"))).route.provider == "alpha"
    seen = len(fake.state.calls())
    await b.stub.Chat(ask())
    await a.stub.Chat(ask("x"))
    assert [(r.key, r.model) for r in fake.state.calls()[seen:]] == [
        ("k2", "model-a"),
        ("k1", "model-x"),
    ]


async def test_hintless_429s_met_on_two_replicas_back_the_key_off_together(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """kb meets 429s without a Retry-After, each once its last backoff is over, alternately on
    A and B: the backoff doubles with each of them (strikes are shared), not with each
    replica's own half (the fourth: 20 to 60 s, not the second's 5 to 15)."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.rate_limited(retry_after=None), model="model-b")
    waits = []
    for replica in (a, b, a, b):
        with pytest.raises(grpc.aio.AioRpcError):
            await replica.stub.Chat(ask("beta/model-b"))  # the 429
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.stub.Chat(ask("beta/model-b"))  # refused: kb cools this long
        assert details_from_rpc_error(caught.value).reason == "NO_CAPACITY"
        wait = details_from_rpc_error(caught.value).retry_after_s
        assert wait is not None
        waits.append(wait)
        clock.advance(wait + 0.01)
    assert fake.state.count(model="model-b") == 4
    # Exponential from the 5 s base (`cooldowns.rate_limit_backoff_s`), jitter in [0.5, 1.5).
    for n, wait in enumerate(waits):
        assert 0.5 * 5 * 2**n <= wait < 1.5 * 5 * 2**n, waits

    # A success on A ends the strikes for both: B's next 429 backs off from the base again.
    fake.state.clear_scenarios()
    assert (await a.stub.Chat(ask("beta/model-b"))).route.deployment == "beta/model-b"
    fake.state.set_scenario(Scenario.rate_limited(retry_after=None), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask("beta/model-b"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask("beta/model-b"))
    wait = details_from_rpc_error(caught.value).retry_after_s
    assert wait is not None and 2.5 <= wait < 7.5


async def test_an_operators_enable_on_either_replica_ends_the_keys_hintless_429_strikes(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """kb met two 429s without a Retry-After on A (strikes shared, each once its last backoff
    was over); the operator enables kb through B, which never met one. The enable vouches for
    the key on every replica: B's next such 429 backs off from the base again (2.5 to 7.5 s),
    not from the third strike (10 to 30 s)."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.rate_limited(retry_after=None), model="model-b")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await a.stub.Chat(ask("beta/model-b"))  # the 429
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await a.stub.Chat(ask("beta/model-b"))  # refused: kb cools this long
        wait = details_from_rpc_error(caught.value).retry_after_s
        assert wait is not None
        clock.advance(wait + 0.01)
    kb = fingerprint("kb")
    await b.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(provider="beta", fingerprint=kb, enabled=True)
    )

    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask("beta/model-b"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask("beta/model-b"))
    wait = details_from_rpc_error(caught.value).retry_after_s
    assert fake.state.count(model="model-b") == 3
    assert wait is not None and 2.5 <= wait < 7.5, wait


async def test_a_stream_refused_on_one_replica_is_served_once_the_other_freed_its_slot(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """The caller cancelled its stream on A and re-opened it on B (an edge's round robin)
    before A gave the slot back: B, refused the slot, hears nothing of A's end, but asks once
    more as its wait ends, and serves the stream on the freed slot (not a 429 with the slot
    free)."""
    config["auth"] = {
        "clients": [{"name": "app", "key": "sk-client-app", "max_concurrent_streams": 1}]
    }
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    stream = a.stub.ChatStream(pb.ChatStreamRequest(params=ask().params), metadata=CLIENT)
    async for message in stream:
        if message.WhichOneof("event") == "chunk":
            break
    fake.state.clear_scenarios()
    since = clock.monotonic()
    reopened = b.stub.ChatStream(pb.ChatStreamRequest(params=ask().params), metadata=CLIENT)
    first = asyncio.ensure_future(anext(aiter(reopened)))

    async def b_waits() -> bool:  # B's wait for a slot: its window open on the clock
        return any(w.when() == since + 0.5 for w in clock.windows)

    await eventually(b_waits, what="B's stream waiting for a slot")
    stream.cancel()

    async def released() -> bool:
        return await b.runtime.store.held(["client:app:streams"]) == [0]

    await eventually(released, what="A's stream slot given back")
    await advance_until_done(clock, 0.5, first, what="B's stream answered after its wait")
    assert (await first).WhichOneof("event") is not None  # served: refused raises
    assert [m.WhichOneof("event") async for m in reopened][-1] == "summary"
