"""Every key of a model disabled by an operator (`switchboard admin keys disable`): the callers'
503 says so, not that the keys' credentials or quota failed and that they come back by
themselves, which only the router's own disables do (a probe brings them back); an operator's
lasts until someone enables it."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.server.test_key_pools import ask, one_provider


async def _disable_by_hand(router: RouterHandle, keep: int = 0) -> None:
    admin = router.admin
    listed = await admin.ListKeys(admin_pb.ListKeysRequest())
    for key in listed.keys[keep:]:
        request = admin_pb.SetKeyEnabledRequest(
            fingerprint=key.fingerprint, enabled=False, reason="leaked in ticket 4711"
        )
        await admin.SetKeyEnabled(request)


async def test_every_key_disabled_by_an_operator_is_said_so(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_provider(fake.base_url, ["k1", "k2"]))
    await _disable_by_hand(router)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (details.reason, details.retry_after_s) == ("NO_CAPACITY", None)
    assert details.message == (
        "Every key of every candidate deployment is disabled by an operator: they serve again "
        "once enabled (`switchboard admin keys enable`)."
    )
    assert fake.state.count() == 0


async def test_keys_disabled_by_an_operator_and_by_the_router_are_both_said(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_provider(fake.base_url, ["k1", "k2"]))
    fake.state.set_scenario(Scenario.invalid_key(style="native"), key="k1")
    while not fake.state.count(key="k1"):  # its 401 disables it (k2 answers the call)
        await router.stub.Chat(ask())
    await _disable_by_hand(router, keep=1)  # k2, by hand
    listed = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys
    assert [key.disabled_reason for key in listed] == ["auth", "manual"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details.message == (
        "Every key of every candidate deployment is disabled: some by an operator, until "
        "enabled (`switchboard admin keys enable`); the others for invalid credentials or "
        "exhausted quota: they are probed and come back by themselves when they work."
    )


async def test_the_routers_own_long_disables_are_not_told_as_an_operators(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """`cooldowns.auth_disable_s` above five years (a refused key out until a probe finds it
    working): both keys refused by the upstream are the router's own disables, said so, not an
    operator's to enable. Whose a disable is, is what the store recorded with it, not how
    long it lasts."""
    config = one_provider(fake.base_url, ["k1", "k2"])
    config["cooldowns"] = {"auth_disable_s": 6 * 365 * 86400.0}
    router = await start_router(config)
    fake.state.set_scenario(Scenario.invalid_key(style="native"))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask())  # each key's 401 disables it
    assert fake.state.count() == 2
    listed = (await router.admin.ListKeys(admin_pb.ListKeysRequest())).keys
    assert [key.disabled_reason for key in listed] == ["auth", "auth"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details.message == (
        "Every key of every candidate deployment is disabled (invalid credentials or "
        "exhausted quota); they are probed and come back by themselves when they work."
    )
    assert fake.state.count() == 2
