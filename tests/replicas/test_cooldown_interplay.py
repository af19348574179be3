"""Cooldowns, conversations' skips and keys' health as two replicas on one Redis and one clock
see them together (issue #9): when a cooldown one of them set ends for the other."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import ask, replica_config, two_replicas

SERVICE = "sk-service-with-route-scope"
AS_SERVICE = (("authorization", f"Bearer {SERVICE}"),)


@pytest.fixture
def config(fake: FakeUpstream, redis_url: str, redis_prefix: str) -> dict[str, Any]:
    """The replicas' config (harness.replica_config) on the suite's Redis, this test's prefix."""
    return replica_config(fake.base_url, redis_url, redis_prefix)


async def test_a_conversation_back_on_its_skipped_deployment_waits_out_its_cooldown(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """A's 502 cools model `a`'s only deployment for everyone for `cooldowns.transient_s` and
    skips it for the conversation (model-skip). The conversation's next call, on B, has nothing
    else to go to: it waits, within its deadline, for the cooldown to end as any other call
    does, rather than being sent at once to the deployment cooled for everyone."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.server_error(502, times=1))
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask(session="s1"))
    cooled_at = clock.now()

    response = await b.stub.Chat(ask(session="s1"), timeout=60)
    assert response.route.deployment == "alpha/model-a"
    transient_s = b.runtime.config.cooldowns.transient_s
    assert clock.now() - cooled_at == pytest.approx(transient_s, abs=0.5)  # waited, on the clock
    assert fake.state.count() == 2


@pytest.mark.parametrize(
    "failure", [Scenario.rate_limited(retry_after="30"), Scenario.invalid_key()], ids=["429", "401"]
)
async def test_a_deployment_cooling_elsewhere_is_in_the_retry_hint_when_the_others_have_no_key(
    failure: Scenario, fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """A cooled beta (a 503: `cooldowns.transient_s`) and met alpha's keys out for model-a (429s
    asking for 30 s, or refused credentials). B's call of `chain` finds alpha with no key and
    beta held back: it is told to come back when beta serves again (a 429 saying so), not in
    30 s, nor (every key of *alpha* disabled) that every key of every candidate is, with a 503
    no SDK retries and no retry hint, while beta is minutes, not a probe, from serving."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("beta/model-b"))
    fake.state.set_scenario(failure, model="model-a")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("a", text="both keys"))  # each key once: both out for model-a
    assert fake.state.count(model="model-a") == 2
    fake.state.clear_scenarios()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask("chain", text="a new conversation"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert details.reason == "NO_CAPACITY"
    transient_s = b.runtime.config.cooldowns.transient_s
    assert details.retry_after_s == pytest.approx(transient_s, abs=0.5)
    assert "beta/model-b (cooldown)" in details.message
    assert fake.state.count() == 3  # B called nobody

    clock.advance(transient_s)
    response = await b.stub.Chat(ask("chain", text="a new conversation"))
    assert response.route.deployment == "beta/model-b"


async def test_a_deployment_cooling_elsewhere_is_in_the_retry_hint_of_a_rate_limited_call(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """alpha cooled by A's 503 (`cooldowns.transient_s`), then B's call of `chain` meets beta's
    only key's 429 asking for 60 s: the caller is told to come back when alpha serves again,
    15 s, not in the 60 s beta's key asked for."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("alpha/model-a"))
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60", times=1), model="model-b")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask("chain", text="a new conversation"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.upstream_status) == ("RATE_LIMITED", 429)
    transient_s = b.runtime.config.cooldowns.transient_s
    assert details.retry_after_s == pytest.approx(transient_s, abs=0.5)

    clock.advance(transient_s)
    response = await b.stub.Chat(ask("chain", text="a new conversation"))
    assert response.route.deployment == "alpha/model-a"


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (Scenario.rate_limited(retry_after="30"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Scenario.invalid_key(), grpc.StatusCode.UNAVAILABLE),
    ],
    ids=["429", "401"],
)
async def test_a_pick_on_keys_out_elsewhere_says_why_and_when_as_a_proxied_call(
    failure: Scenario,
    code: grpc.StatusCode,
    fake: FakeUpstream,
    start_router: StartRouter,
    config: dict[str, Any],
) -> None:
    """A met alpha's keys out for model-a (429s asking for 30 s, or refused credentials). A
    PickRoute of `a` on B is refused as a proxied call there is: a 429 saying when to come back
    (its RetryInfo), or the 503 of every key disabled; not a bare refusal with no hint, which
    a service calling upstreams itself can only retry at once, again and again."""
    _route_scoped(config)
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(failure, model="model-a")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask(text="both keys"), metadata=AS_SERVICE)
    assert fake.state.count(model="model-a") == 2

    picked, called = await _pick_and_call(b, "a")
    assert picked.code() == called.code() == code
    pick, call = details_from_rpc_error(picked), details_from_rpc_error(called)
    assert (pick.reason, pick.retry_after_s) == (call.reason, call.retry_after_s)
    assert pick.message == call.message


async def test_a_pick_on_keys_an_operator_disabled_elsewhere_says_so_as_a_proxied_call(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """An operator disabled both of alpha's keys on A. A PickRoute of `a` on B is refused as a
    proxied call of it there is: the 503 saying an operator disabled them (whose disables, read
    from the store, on the replica that made none), not that a probe brings them back."""
    _route_scoped(config)
    config["auth"]["clients"][0]["scopes"].append("admin")
    a, b = await two_replicas(start_router, config, ManualClock(time.time()))
    for key in ("k1", "k2"):
        request = admin_pb.SetKeyEnabledRequest(
            provider="alpha", fingerprint=fingerprint(key), enabled=False
        )
        await a.admin.SetKeyEnabled(request, metadata=AS_SERVICE)

    picked, called = await _pick_and_call(b, "a")
    assert picked.code() == called.code() == grpc.StatusCode.UNAVAILABLE
    pick, call = details_from_rpc_error(picked), details_from_rpc_error(called)
    assert (
        pick.message
        == call.message
        == (
            "Every key of every candidate deployment is disabled by an operator: they serve again "
            "once enabled (`switchboard admin keys enable`)."
        )
    )
    assert fake.state.count() == 0


async def _beta_cooling_with_its_key_disabled(a: Any, fake: FakeUpstream) -> None:
    """A cools beta for everyone (a 503: `cooldowns.transient_s`), then its call of beta alone,
    tried anyway while it cools (no deadline to wait within), has kb refused (a 401): beta's
    only key is disabled until a probe finds it working, whenever beta's cooldown ends."""
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("beta/model-b"))
    fake.state.set_scenario(Scenario.invalid_key(), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("beta/model-b", text="tried while it cools"))
    assert fake.state.count(model="model-b") == 2


@pytest.mark.parametrize(
    ("failure", "code", "retry_after_s"),
    [
        (Scenario.rate_limited(retry_after="30"), grpc.StatusCode.RESOURCE_EXHAUSTED, 30.0),
        (Scenario.invalid_key(), grpc.StatusCode.UNAVAILABLE, None),
    ],
    ids=["429", "401"],
)
async def test_a_cooling_deployment_with_every_key_disabled_is_no_retry_hint(
    failure: Scenario,
    code: grpc.StatusCode,
    retry_after_s: float | None,
    fake: FakeUpstream,
    start_router: StartRouter,
    config: dict[str, Any],
) -> None:
    """beta cools with its only key disabled; alpha's keys are out for model-a (429s asking for
    30 s, or refused credentials). B's call of `chain` is not told to come back when beta's
    cooldown ends (nothing serves then: kb stays disabled), but in alpha's 30 s, or, every key
    disabled, the 503 that says so."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    await _beta_cooling_with_its_key_disabled(a, fake)
    fake.state.set_scenario(failure, model="model-a")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("a", text="both keys"))
    assert fake.state.count(model="model-a") == 2
    fake.state.clear_scenarios()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask("chain", text="a new conversation"))
    assert caught.value.code() == code
    details = details_from_rpc_error(caught.value)
    assert details.reason == "NO_CAPACITY"
    assert details.retry_after_s == pytest.approx(retry_after_s, abs=0.5)
    assert fake.state.count() == 4  # B called nobody


async def test_a_rate_limited_call_is_not_told_a_cooling_deployment_with_no_key_serves(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """beta cools with its only key disabled; B's call of `chain` meets alpha's keys' 429s
    asking for 60 s: the caller is told 60 s, not the end of beta's cooldown, when beta has
    no key to serve with."""
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    await _beta_cooling_with_its_key_disabled(a, fake)
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"), model="model-a")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await b.stub.Chat(ask("chain", text="a new conversation"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.upstream_status) == ("RATE_LIMITED", 429)
    assert details.retry_after_s == pytest.approx(60.0, abs=0.5)
    assert fake.state.count(model="model-a") == 2


async def test_a_pick_beside_a_cooling_deployment_says_when_it_serves_as_a_proxied_call(
    fake: FakeUpstream, start_router: StartRouter, config: dict[str, Any]
) -> None:
    """A cooled beta (a 503: `cooldowns.transient_s`) and met alpha's keys refused (401s). A
    PickRoute of `chain` on B is refused as a proxied call of it there is: a 429 saying when
    beta serves again, not the 503 of every key disabled while beta is seconds from serving."""
    _route_scoped(config)
    clock = ManualClock(time.time())
    a, b = await two_replicas(start_router, config, clock)
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask("beta/model-b"), metadata=AS_SERVICE)
    fake.state.set_scenario(Scenario.invalid_key(), model="model-a")
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.Chat(ask(text="both keys"), metadata=AS_SERVICE)
    assert fake.state.count(model="model-a") == 2

    picked, called = await _pick_and_call(b, "chain")
    assert picked.code() == called.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    pick, call = details_from_rpc_error(picked), details_from_rpc_error(called)
    transient_s = b.runtime.config.cooldowns.transient_s
    assert pick.retry_after_s == call.retry_after_s == pytest.approx(transient_s, abs=0.5)
    assert "beta/model-b (cooldown)" in pick.message


def _route_scoped(config: dict[str, Any]) -> None:
    """The service client (`AS_SERVICE`) may Chat and PickRoute."""
    config["auth"] = {
        "clients": [{"name": "svc", "key_sha256": hash_key(SERVICE), "scopes": ["chat", "route"]}]
    }


async def _pick_and_call(
    replica: RouterHandle, model: str
) -> tuple[grpc.aio.AioRpcError, grpc.aio.AioRpcError]:
    """A PickRoute of `model` on `replica`, then a Chat of it, both refused: their errors."""
    with pytest.raises(grpc.aio.AioRpcError) as picked:
        await replica.stub.PickRoute(pb.PickRouteRequest(model=model), metadata=AS_SERVICE)
    with pytest.raises(grpc.aio.AioRpcError) as called:
        await replica.stub.Chat(ask(model, text="a new conversation"), metadata=AS_SERVICE)
    return picked.value, called.value
