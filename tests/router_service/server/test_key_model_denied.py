"""A model no key of a pool may use (each key's upstream said MODEL_DENIED): the caller is told
so, PERMISSION_DENIED with no retry hint, at once and on every call after (the keys' day-long
set-aside for that model is not a wait: no 429 with a day's Retry-After); one key denied is
passed over for the others, and the keys serve their other models."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_pools import ask, one_provider
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

DENIED = {"error": {"message": "You are not allowed to sample from this model"}}


def deny(fake: FakeUpstream, key: str, model: str = "model-a") -> None:
    fake.state.set_scenario(Scenario(status=403, error_body=DENIED), key=key, model=model)


async def refused(router: RouterHandle, streamed: bool, model: str = "a") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        if streamed:
            async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=ask(model).params)):
                pass
        else:
            await router.stub.Chat(ask(model))
    return caught.value


def denied_and_other(fake: FakeUpstream, state: dict[str, str]) -> dict[str, Any]:
    deployments = [{"provider": "alpha", "model": "model-a"}, {"provider": "beta", "model": "b"}]
    return {
        "providers": {
            "alpha": {"base_url": fake.base_url, "keys": ["k1"]},
            "beta": {"base_url": fake.base_url, "keys": ["k2"]},
        },
        "models": {"a": {"deployments": deployments}},
        "server": {"port": 0},
        "state": state,
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_model_every_key_is_denied_is_permission_denied_not_a_long_wait(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    streamed: bool,
) -> None:
    config = one_provider(fake.base_url, ["k1", "k2"])
    config["state"] = state_section
    router = await start_router(config)
    deny(fake, "k1")
    deny(fake, "k2")

    for _ in range(2):  # the call that met the refusals, and one after (keys set aside)
        error = await refused(router, streamed)
        details = details_from_rpc_error(error)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert details.reason == "MODEL_DENIED" and details.retry_after_s is None
        assert details.message == (
            "No key of provider `alpha` may use `model-a` (each key's upstream refused it): "
            "an operator grants a key the model, then enables it (`switchboard admin keys enable`)."
        )
        assert "k1" not in details.message and "k2" not in details.message
    assert [fake.state.count(key=k, model="model-a") for k in ("k1", "k2")] == [1, 1]
    answer = await router.stub.Chat(ask("b"))  # their other models: served
    assert answer.completion.choices[0].message.text == "Echo: hi"


async def test_a_model_denied_one_key_is_served_by_the_other(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    config = one_provider(fake.base_url, ["k1", "k2"])
    config["state"] = state_section
    router = await start_router(config)
    deny(fake, "k1")

    for _ in range(3):
        answer = await router.stub.Chat(ask())
        assert answer.completion.choices[0].message.text == "Echo: hi"
    assert fake.state.count(key="k1", model="model-a") <= 1  # set aside once refused
    assert fake.state.count(key="k2", model="model-a") >= 2


async def test_a_pick_for_a_model_every_key_was_reported_denied_is_permission_denied(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """PickRoute's callers report MODEL_DENIED for each key it gave them: the next pick is
    refused as a proxied call is, PERMISSION_DENIED, not a 429 with a day's Retry-After."""
    config = with_route_client(one_provider(fake.base_url, ["k1", "k2"]))
    config["state"] = state_section
    router = await start_router(config)
    pick = pb.PickRouteRequest(model="a")
    for _ in range(2):
        picked = await router.stub.PickRoute(pick, metadata=AS_SERVICE)
        denied = pb.ReportOutcomeRequest(
            lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_MODEL_DENIED, upstream_status=403
        )
        assert (await router.stub.ReportOutcome(denied, metadata=AS_SERVICE)).accepted

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.PickRoute(pick, metadata=AS_SERVICE)
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details.reason == "MODEL_DENIED" and details.retry_after_s is None


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_denied_pool_beside_a_disabled_one_is_no_wait(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    streamed: bool,
) -> None:
    """One deployment's keys all refused its model, the other's all disabled (their
    credentials refused): the caller hears the 503 of every key disabled, as without the
    first, not a 429 to come back in a day (the denied keys' set-aside read as a wait)."""
    config = denied_and_other(fake, state_section)
    router = await start_router(config)
    deny(fake, "k1")
    bad_key = {"error": {"message": "Incorrect API key provided"}}
    fake.state.set_scenario(Scenario(status=401, error_body=bad_key), key="k2")
    await refused(router, streamed)  # the call that met the refusals: the last one's 401

    for _ in range(2):
        error = await refused(router, streamed)
        details = details_from_rpc_error(error)
        assert error.code() == grpc.StatusCode.UNAVAILABLE, details.message
        assert details.reason == "NO_CAPACITY" and details.retry_after_s is None
        assert details.message.startswith("Every key of every candidate deployment is disabled")
    assert [fake.state.count(key=k) for k in ("k1", "k2")] == [1, 1]


async def test_a_pick_beside_a_denied_pool_and_a_disabled_one_is_no_wait(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    """PickRoute's callers report one deployment's key refused the model, the other's refused
    its credentials: the next pick is every key disabled's 503, as a proxied call's, not a 429
    with a day's Retry-After."""
    config = denied_and_other(fake, state_section)
    router = await start_router(with_route_client(config))
    pick = pb.PickRouteRequest(model="a")
    for outcome in (routing_pb2.OUTCOME_MODEL_DENIED, routing_pb2.OUTCOME_AUTH_INVALID):
        picked = await router.stub.PickRoute(pick, metadata=AS_SERVICE)
        report = pb.ReportOutcomeRequest(
            lease_id=picked.lease_id, outcome=outcome, upstream_status=403
        )
        assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.PickRoute(pick, metadata=AS_SERVICE)
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, details.message
    assert details.reason == "NO_CAPACITY" and details.retry_after_s is None
