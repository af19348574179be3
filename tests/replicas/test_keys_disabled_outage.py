"""Keys an operator disabled on one replica, as another that then loses Redis tells them: the
503 still says an operator disabled them (they serve again once enabled), not that the router
did and a probe brings them back. That replica knew of the disables from Redis (their deadlines
are kept as it reads them); whose disables they are must stay known with them."""

from __future__ import annotations

import time

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import ask
from tests.replicas.test_batch_outage import Configs, configs

__all__ = ["configs"]  # the fixture, shared

pytestmark = pytest.mark.timeout(60)

OPERATORS = (
    "Every key of every candidate deployment is disabled by an operator: they serve again once "
    "enabled (`switchboard admin keys enable`)."
)


async def _refused(replica: RouterHandle) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await replica.stub.Chat(ask("a"), timeout=30)
    details = details_from_rpc_error(caught.value)
    assert (caught.value.code(), details.reason) == (grpc.StatusCode.UNAVAILABLE, "NO_CAPACITY")
    return details.message


async def test_keys_an_operator_disabled_elsewhere_are_told_as_theirs_during_an_outage(
    configs: Configs, start_router: StartRouter
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    for key in ("k1", "k2"):
        off = admin_pb.SetKeyEnabledRequest(
            provider="alpha", fingerprint=fingerprint(key), enabled=False, reason="ticket 4711"
        )
        await two.admin.SetKeyEnabled(off)
    assert await _refused(one) == OPERATORS  # heard from Redis
    await redis_proxy.cut()
    assert await _refused(one) == OPERATORS  # as its local state knows them
    await redis_proxy.restore()
