"""Three router replicas on one Redis (issue #9): what one of them learns, all of them honour —
disabled keys, cooled deployments, in-flight limits, sticky sessions, callers' rate limits."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.sessions import session_key
from router_service.state import ResilientStateStore
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.replicas.harness import ask, peak_concurrency, replica_config, set_enabled, two_replicas
from tests.replicas.redis_fixtures import RedisProxy, keys_under


async def three(start_router: StartRouter, config: dict[str, object]) -> list[RouterHandle]:
    replicas = [await start_router(config) for _ in range(3)]
    for replica in replicas:
        store = replica.runtime.store
        assert isinstance(store, ResilientStateStore) and not store.degraded
    return replicas


async def test_a_key_disabled_by_an_operator_on_one_replica_is_used_by_none(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b, c = await three(start_router, replica_config(fake.base_url, redis_url, redis_prefix))
    await a.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(
            provider="alpha", fingerprint=fingerprint("k1"), enabled=False, reason="rotating"
        )
    )
    for replica in (b, c) * 10:
        await replica.stub.Chat(ask())
    assert fake.state.count(key="k1") == 0
    assert fake.state.count(key="k2") == 20
    listed = await c.admin.ListKeys(admin_pb.ListKeysRequest())
    (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
    assert k1.state == admin_pb.KEY_STATE_DISABLED
    # Why, and the operator's words, from the store: c did not disable it.
    assert (k1.disabled_reason, k1.disabled_note) == ("manual", "rotating")

    await b.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(provider="alpha", fingerprint=fingerprint("k1"), enabled=True)
    )
    for _ in range(4):
        await a.stub.Chat(ask())
    assert fake.state.count(key="k1") > 0  # enabled again everywhere


async def test_an_invalid_key_found_by_one_replica_is_never_tried_by_the_others(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b, c = await three(start_router, replica_config(fake.base_url, redis_url, redis_prefix))
    fake.state.set_scenario(Scenario.invalid_key(), key="k1")
    for _ in range(4):  # least-in-flight, then least recently used: A meets k1 in two requests
        await a.stub.Chat(ask())
    assert fake.state.count(key="k1") == 1
    for replica in (b, c, a) * 10:
        response = await replica.stub.Chat(ask())
        assert response.completion.choices[0].message.text == "Echo: hi"
    assert fake.state.count(key="k1") == 1
    for replica in (b, c):  # each says why, though only A saw the refusal
        listed = await replica.admin.ListKeys(admin_pb.ListKeysRequest())
        (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
        assert (k1.disabled_reason, k1.disabled_note, k1.disabled_by) == ("auth", "", "")


async def test_a_cooldown_registered_on_one_replica_holds_on_all(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    a, b, c = await three(start_router, replica_config(fake.base_url, redis_url, redis_prefix))
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    response = await b.stub.Chat(ask("chain"))
    assert response.route.deployment == "beta/model-b"
    assert fake.state.count(model="model-a") == 1

    # model-a is healthy again, but cooled for everyone for cooldowns.transient_s.
    for replica in (a, c) * 10:
        assert (await replica.stub.Chat(ask("chain"))).route.deployment == "beta/model-b"
    assert fake.state.count(model="model-a") == 1


async def test_a_key_cooling_for_a_model_shows_so_on_a_replica_that_never_served_it(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """The admin view of any replica lists a key's per-model cooldown, not only the one that met
    the 429: B has served nothing, and yet lists k1 cooling for model-a."""
    a, b, _ = await three(start_router, replica_config(fake.base_url, redis_url, redis_prefix))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="600", times=1), key="k1")
    while fake.state.count(key="k1") < 1:  # least recently used: A comes round to k1
        await a.stub.Chat(ask())
    for name, replica in (("a", a), ("b", b)):
        listed = await replica.admin.ListKeys(admin_pb.ListKeysRequest(provider="alpha"))
        (k1,) = [k for k in listed.keys if k.fingerprint == fingerprint("k1")]
        assert k1.state == admin_pb.KEY_STATE_COOLING, name
        assert list(k1.cooling_models) == ["model-a"]


async def test_max_in_flight_holds_across_replicas(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(
        keys=[{"key": "k1", "max_in_flight": 2}], queue_timeout_s=30
    )
    replicas = await three(start_router, config)
    fake.state.set_scenario(Scenario(latency_ms=10))
    fake.state.hold()  # the first two calls stay upstream until both are there: the limit is
    # reached however slowly the machine sends the rest (a latency alone could let calls pass
    # one at a time)
    calls = asyncio.gather(*(replicas[i % 3].stub.Chat(ask()) for i in range(60)))
    await fake.state.wait_for(lambda: fake.state.held == 2, what="two calls on k1 at once")
    fake.state.release()
    responses = await calls

    assert len(responses) == 60
    assert {r.route.attempts[-1].key_fingerprint for r in responses} == {fingerprint("k1")}
    assert peak_concurrency(fake.state.calls(key="k1")) <= 2
    assert peak_concurrency(fake.state.calls(key="k1")) == 2  # and the limit was reached
    for replica in replicas:  # every replica's releases first: the slots are shared
        await replica.runtime.afterwork.drain()
    for replica in replicas:
        assert await replica.leases_held() == 0


async def test_a_session_sticks_to_one_deployment_on_every_replica(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["models"]["chain"]["strategy"] = "weighted"
    replicas = await three(start_router, config)
    for session in (f"conversation-{i}" for i in range(8)):
        served = {
            (await replicas[i % 3].stub.Chat(ask("chain", session))).route.deployment
            for i in range(9)
        }
        assert len(served) == 1, (session, served)


async def test_a_callers_rate_limit_holds_across_replicas(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["auth"] = {"clients": [{"name": "app", "key": "sk-client-app", "rpm": 4}]}
    replicas = await three(start_router, config)
    metadata = (("authorization", "Bearer sk-client-app"),)
    for i in range(4):
        await replicas[i % 3].stub.Chat(ask(), metadata=metadata)
    for replica in replicas:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.stub.Chat(ask(), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fake.state.count() == 4


async def active_on(replica: RouterHandle, provider: str) -> dict[str, int]:
    stats = await replica.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    found = next((p for p in stats.sessions if p.provider == provider), None)
    return dict(found.active) if found is not None else {}


async def test_provider_ban_session_marks_are_shared_and_gone_when_a_lease_is_refused(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """A provider-ban provider's session marks live in Redis, so every replica sees them; a
    session whose key lease was refused leaves no mark behind."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(
        keys=[{"key": "k1", "max_in_flight": 1}], thread_protection="provider-ban", max_sessions=2
    )
    a, b, _ = await three(start_router, config)
    fake.state.hold()  # s1 stays at the upstream on k1 until released (a latency could run
    # out on a loaded machine before the marks are read or s2 arrives)
    held = asyncio.ensure_future(a.stub.Chat(ask("chain", session="s1")))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="s1 held at the upstream")
    assert await active_on(b, "alpha") == {session_key("", "s1"): 1}

    # s2 may join alpha (2 sessions allowed) but k1 is busy: beta serves it, and its mark goes.
    moving = asyncio.ensure_future(b.stub.Chat(ask("chain", session="s2")))
    await fake.state.wait_for(lambda: fake.state.held == 2, what="s2 held at the upstream")
    fake.state.release()
    moved = await moving
    assert moved.route.deployment == "beta/model-b"
    assert (await held).route.deployment == "alpha/model-a"

    async def no_one_active() -> bool:
        return await active_on(a, "alpha") == {}

    await eventually(no_one_active, what="alpha's session marks taken back")


async def test_marks_of_a_provider_without_a_session_limit_stay_on_their_replica(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """Nothing is decided on them, so they cost Redis nothing: the replica serving the request
    lists it, the others do not, and no mark is written to Redis."""
    a, b, _ = await three(start_router, replica_config(fake.base_url, redis_url, redis_prefix))
    fake.state.hold()  # s1 stays at the upstream until released (a latency could run out
    # on a loaded machine before the marks are read, and the mark with it)
    served = asyncio.ensure_future(a.stub.Chat(ask(session="s1")))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="s1 held at the upstream")
    assert await active_on(a, "alpha") == {session_key("", "s1"): 1}
    assert await active_on(b, "alpha") == {}
    assert not [key for key in keys_under(redis_url, redis_prefix) if "active" in key]
    fake.state.release()
    await served
    assert await active_on(a, "alpha") == {}


async def test_an_operators_enable_ends_half_open_on_the_replica_whose_probe_passed(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """b's probe brought the key back: b lets it serve one call at a time (half-open). The
    operator enables it through a: from b's next look on, b lets it serve fully too."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(keys=["k1"], queue_timeout_s=0)
    config["key_health"] = {"probe_interval_s": 3600}  # b looks when the test says, only
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask())
    fake.state.clear_scenarios()
    clock.advance(b.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # passed: half-open on b
    await set_enabled(a, "k1", True)
    await b.runtime.prober.tick()

    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    first = b.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    try:
        assert (await anext(aiter(first))).route.deployment == "alpha/model-a"
        fake.state.clear_scenarios()
        response = await b.stub.Chat(ask())  # a second call beside the first
        assert response.completion.choices[0].message.text == "Echo: hi"
    finally:
        fake.state.release()
    assert [chunk async for chunk in first]


async def test_a_key_whose_probe_passed_elsewhere_is_half_open_here_too(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """b disabled k1 (credentials refused) and a heard of it; b's probe brought it back, so
    b lets it serve one call at a time (half-open). From a's next look on, a does the same:
    a key just back is not trusted with a's whole load while b still doubts it."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(keys=["k1"], queue_timeout_s=0)
    config["key_health"] = {"probe_interval_s": 3600}  # each looks when the test says, only
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask())
    assert await a.runtime.prober.tick() == 0  # a adopts k1's disable (probed later)
    fake.state.clear_scenarios()
    clock.advance(b.runtime.config.key_health.probe_initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # passed: half-open on b
    assert await a.runtime.prober.tick() == 0  # a sees the disable over: nothing to probe

    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    first = a.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    try:
        assert (await anext(aiter(first))).route.deployment == "alpha/model-a"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await a.stub.Chat(ask())  # a second call beside the first
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        fake.state.release()
    assert [chunk async for chunk in first]
    snapshot = await a.runtime.pools["alpha"].snapshot()
    assert snapshot[0].half_open


async def test_a_half_open_key_failing_on_another_replica_doubles_the_probe_backoff_here_too(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """b's probe brought k1 back (half-open on both); its first real call, on a, is refused
    again. b, whose probe passed, must not probe it again as soon as after its first disable:
    a failure while half-open doubles the backoff, whichever replica met it."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"].update(keys=["k1"], queue_timeout_s=0)
    config["key_health"] = {"probe_interval_s": 3600}  # each looks when the test says, only
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await b.stub.Chat(ask())
    await a.runtime.prober.tick()  # a adopts k1's disable
    fake.state.clear_scenarios()
    initial_s = b.runtime.config.key_health.probe_initial_s
    clock.advance(initial_s * 1.5)  # its jitter's longest
    assert await b.runtime.prober.tick() == 1  # passed: half-open on b
    await a.runtime.prober.tick()

    fake.state.set_scenario(Scenario.invalid_key(style="openai"), key="k1")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask())  # the key's first real call since: refused again
    await b.runtime.prober.tick()  # b hears of it
    health = b.runtime.pools["alpha"].health[fingerprint("k1")]
    assert not health.half_open
    assert health.probe_backoff_s == initial_s * 2
    assert health.next_probe_at - clock.now() >= initial_s  # the doubled wait's least jitter


async def test_a_unary_answer_comes_after_its_sessions_sticky_choice_is_written(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    redis_proxy: RedisProxy,
) -> None:
    """The sticky choice of a session's first call is in Redis before the caller has its answer:
    a next call on another replica, sent once the answer is in, reads it. It was written after
    the answer (with the lease's release), and under load that next call could plan before it
    landed and be served by the other deployment."""
    config = replica_config(fake.base_url, redis_proxy.url, redis_prefix)
    config["models"]["chain"]["strategy"] = "weighted"
    a = await start_router(config)
    direct = replica_config(fake.base_url, redis_url, redis_prefix)
    direct["models"]["chain"]["strategy"] = "weighted"
    b = await start_router(direct)
    # A's sticky write (its plan's MGET read the name too) runs on Redis, unacknowledged.
    redis_proxy.hold_replies_after(b"\r\nSET\r\n")
    answer = asyncio.ensure_future(a.stub.Chat(ask("chain", "s")))
    await redis_proxy.held.wait()
    # A whole call on B, long enough for an answer A had already sent to arrive.
    await b.stub.Chat(ask("chain", "another"))
    assert not answer.done(), "answered before Redis acknowledged the session's sticky choice"
    await redis_proxy.restore()
    first = (await answer).route.deployment
    for replica in (b, a, b):
        assert (await replica.stub.Chat(ask("chain", "s"))).route.deployment == first
