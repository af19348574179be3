"""A deployment every key of which was refused its model (MODEL_DENIED) beside one held back
(cooling, skipped for the session) every key of which is disabled: the caller hears the
held-back one's 503 (every key disabled, whose disables), proxied or picked, not a 429 to come
back in a day (the denied keys' set-aside read as a wait)."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conformance.helpers import chat, params
from tests.conformance.helpers import stream as stream_of
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_model_denied import (
    DENIED,
    denied_and_other,
    deny,
    refused,
)
from tests.router_service.server.test_passed_through_413 import claude_then_backup
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

HELD_BACK = "No deployment of `a` that takes this request may serve it now: beta/b ("
# Held back as cooling, or skipped for the conversation its 503 failed (proxied calls).
DISABLED = (
    "); every key of them is disabled by an operator: they serve again once enabled "
    "(`switchboard admin keys enable`)."
)


async def disable_beta(router: RouterHandle) -> None:
    request = admin_pb.SetKeyEnabledRequest(
        provider="beta", fingerprint=fingerprint("k2"), enabled=False, reason="ticket 4711"
    )
    await router.admin.SetKeyEnabled(request, metadata=AS_SERVICE)  # open mode: unread


def said_disabled(error: grpc.aio.AioRpcError) -> None:
    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, details.message
    assert (details.reason, details.retry_after_s) == ("NO_CAPACITY", None)
    assert details.message.startswith(HELD_BACK) and details.message.endswith(DISABLED)


@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_denied_pool_beside_a_cooling_disabled_one_is_its_503(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    streamed: bool,
) -> None:
    router = await start_router(denied_and_other(fake, state_section))
    deny(fake, "k1")
    fake.state.set_scenario(Scenario.server_error(503), key="k2")
    await refused(router, streamed)  # the call that met both: beta cools (its 503)
    await disable_beta(router)

    for _ in range(2):
        said_disabled(await refused(router, streamed))
    assert [fake.state.count(key=k) for k in ("k1", "k2")] == [1, 1]
    assert await router.leases_held() == 0


async def test_a_pick_beside_a_denied_pool_and_a_cooling_disabled_one_is_its_503(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    router = await start_router(with_route_client(denied_and_other(fake, state_section)))
    pick = pb.PickRouteRequest(model="a")
    for _ in range(2):  # alpha's key reported refused the model, beta's call a 503 (it cools)
        picked = await router.stub.PickRoute(pick, metadata=AS_SERVICE)
        denied = picked.provider == "alpha"
        outcome = routing_pb2.OUTCOME_MODEL_DENIED if denied else routing_pb2.OUTCOME_UPSTREAM_ERROR
        report = pb.ReportOutcomeRequest(
            lease_id=picked.lease_id, outcome=outcome, upstream_status=403 if denied else 503
        )
        assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted
    await disable_beta(router)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.PickRoute(pick, metadata=AS_SERVICE)
    said_disabled(caught.value)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_body_over_the_limit_beside_a_cooling_denied_deployment_is_the_callers_413(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str], stream: bool
) -> None:
    """Claude cannot take the body, the backup is held back (cooling) and every key of it was
    refused its model: it never serves, so the caller's 413, not a 503 saying its keys are
    disabled for invalid credentials or exhausted quota."""
    router = await start_router({**claude_then_backup(fake), "state": state_section})
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="m-backup")
    with pytest.raises(grpc.aio.AioRpcError):  # the backup cools
        await chat(router, params("backup/m-backup"))
    fake.state.set_scenario(Scenario(status=403, error_body=DENIED), model="m-backup")
    with pytest.raises(grpc.aio.AioRpcError):  # asked by name while it cools: refused
        # A deadline shorter than the 15 s cooldown: tried at once, not after it.
        await router.stub.Chat(
            pb.ChatRequest(params=params("backup/m-backup", text="tried while it cools")),
            timeout=10,
        )
    fake.state.set_scenario(Scenario(status=413), model="claude-x")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await (stream_of(router, params("chain")) if stream else chat(router, params("chain")))
    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details.message
    assert (details.upstream_status, details.retry_after_s) == (413, None)
    assert fake.state.count(model="m-backup") == 2
    assert await router.leases_held() == 0
