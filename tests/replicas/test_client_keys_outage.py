"""Issued client keys asked about on a replica cut off from Redis: it cannot say what the log
holds, so a list or a revocation is UNAVAILABLE (the operator retries), never the keys it
happens to know (an empty list) or NOT_FOUND (a key another replica issued read as gone)."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.replicas.harness import replica_config
from tests.replicas.redis_fixtures import RedisProxy
from tests.router_service.auth.helpers import bearer, client

pytestmark = pytest.mark.timeout(60)

OPS = "sk-ops-keys-outage-0123"
APP = "sk-app-keys-outage-0123"


async def test_a_replica_cut_off_from_redis_neither_lists_nor_revokes_from_what_it_knows(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_proxy: RedisProxy,
    redis_url: str,
    redis_prefix: str,
) -> None:
    auth = {"clients": [client("ops", OPS, scopes=["admin"]), client("app", APP)]}
    clock = ManualClock()
    through = replica_config(fake.base_url, redis_proxy.url, redis_prefix, auth=auth)
    through["state"].update(socket_timeout_s=1.0, retry_interval_s=1.0)
    a = await start_router(through, clock=clock)
    b = await start_router(replica_config(fake.base_url, redis_url, redis_prefix, auth=auth))
    await redis_proxy.cut()
    request = admin_pb.IssueClientKeyRequest(client="app", label="ci")
    issued = await b.admin.IssueClientKey(request, metadata=bearer(OPS))  # A hears nothing

    with pytest.raises(grpc.aio.AioRpcError) as listed:
        await a.admin.ListClientKeys(admin_pb.ListClientKeysRequest(), metadata=bearer(OPS))
    revoke = admin_pb.RevokeClientKeyRequest(id=issued.info.id)
    with pytest.raises(grpc.aio.AioRpcError) as revoked:
        await a.admin.RevokeClientKey(revoke, metadata=bearer(OPS))

    assert listed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert revoked.value.code() is grpc.StatusCode.UNAVAILABLE
    assert issued.key not in str(listed.value.details()) + str(revoked.value.details())
    # Redis back: the same revocation on A takes, and B refuses the key as its log says.
    await redis_proxy.restore()
    await a.admin.RevokeClientKey(revoke, metadata=bearer(OPS))
    listed_b = await b.admin.ListClientKeys(admin_pb.ListClientKeysRequest(), metadata=bearer(OPS))
    assert list(listed_b.keys) == []
