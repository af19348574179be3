"""Client keys issued on one replica act on every replica sharing Redis: a key issued on A works
on B once B heard the notice; revoked on A, it is refused on B as soon as B heard that; a
notice B never gets (an append nobody announced, as when its subscriber dropped) is caught by
B's periodic read (`auth.issued_keys_resync_s`), driven by the ManualClock."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import grpc
import openai
import orjson
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.auth import IssuedKeys
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge
from tests.replicas.harness import redis_store, replica_config, two_replicas
from tests.router_service.auth.helpers import bearer, chat, client

pytestmark = pytest.mark.timeout(60)

OPS = "sk-ops-replica-keys-0123"
APP = "sk-app-replica-keys-0123"
RESYNC_S = 600.0


async def until_known(keys: IssuedKeys, key: str, known: bool) -> None:
    """Wait, read by read of the log (each one a notice heard or a resync), until `keys`
    knows `key` (or no longer does)."""
    digest = hashlib.sha256(key.encode()).digest()
    while (keys.find(digest) is not None) is not known:
        await keys.synced(keys.syncs)


async def refused(replica: RouterHandle, key: str) -> bool:
    try:
        await replica.stub.Chat(chat(model="a"), metadata=bearer(key))
    except grpc.aio.AioRpcError as exc:
        return exc.code() is grpc.StatusCode.UNAUTHENTICATED
    return False


async def test_issued_on_one_replica_revoked_on_another(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    redis_url: str,
    redis_prefix: str,
) -> None:
    clients = [client("ops", OPS, scopes=["admin"]), client("app", APP, rpm=2)]
    auth = {"clients": clients, "issued_keys_resync_s": RESYNC_S}
    config = replica_config(fake.base_url, redis_url, redis_prefix, auth=auth)
    one, two = await two_replicas(start_router, config, ManualClock())
    request = admin_pb.IssueClientKeyRequest(client="app", label="ci")
    issued = await one.admin.IssueClientKey(request, metadata=bearer(OPS))

    await until_known(two.runtime.issued_keys, issued.key, True)
    edge = await start_edge(two)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=issued.key, max_retries=0, timeout=10
    ) as sdk:
        assert await sdk.chat.completions.create(
            model="a", messages=[{"role": "user", "content": "hi"}]
        )
    # Its client's rpm is shared: one call through A with the app's own key, and it is full.
    await one.stub.Chat(chat(model="a"), metadata=bearer(APP))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await two.stub.Chat(chat(model="a"), metadata=bearer(issued.key))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

    revoke = admin_pb.RevokeClientKeyRequest(id=issued.info.id)
    await one.admin.RevokeClientKey(revoke, metadata=bearer(OPS))
    await until_known(two.runtime.issued_keys, issued.key, False)
    assert await refused(two, issued.key)
    listed = await two.admin.ListClientKeys(admin_pb.ListClientKeysRequest(), metadata=bearer(OPS))
    assert list(listed.keys) == []


async def test_a_lost_notice_is_caught_by_the_periodic_read(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    clients = [client("ops", OPS, scopes=["admin"]), client("app", APP)]
    auth = {"clients": clients, "issued_keys_resync_s": RESYNC_S}
    config = replica_config(fake.base_url, redis_url, redis_prefix, auth=auth)
    one, two = await two_replicas(start_router, config, clock)
    request = admin_pb.IssueClientKeyRequest(client="app")
    issued = await one.admin.IssueClientKey(request, metadata=bearer(OPS))
    follower = two.runtime.issued_keys
    await until_known(follower, issued.key, True)

    # A revocation written without its notice: B goes on accepting the key, until its period.
    line = orjson.dumps({"op": "revoke", "id": issued.info.id, "at": clock.now()}) + b"\n"
    await redis_store(one).append_document("client-keys", line, max_bytes=1 << 22)
    await follower.resting.wait()
    assert not await refused(two, issued.key)
    read = follower.syncs
    clock.advance(RESYNC_S)
    await follower.synced(read)
    assert await refused(two, issued.key)


async def test_list_clients_on_any_replica_reads_the_keys_as_the_store_has_them(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    """An operator's ListClients reads the log first, as ListClientKeys does: a key revoked on
    A (its notice lost) is not listed by B as if it still worked."""
    clients = [client("ops", OPS, scopes=["admin"]), client("app", APP)]
    auth = {"clients": clients, "issued_keys_resync_s": RESYNC_S}
    config = replica_config(fake.base_url, redis_url, redis_prefix, auth=auth)
    clock = ManualClock()
    one, two = await two_replicas(start_router, config, clock)
    issued = await one.admin.IssueClientKey(
        admin_pb.IssueClientKeyRequest(client="app"), metadata=bearer(OPS)
    )
    follower = two.runtime.issued_keys
    await until_known(follower, issued.key, True)
    line = orjson.dumps({"op": "revoke", "id": issued.info.id, "at": clock.now()}) + b"\n"
    await redis_store(one).append_document("client-keys", line, max_bytes=1 << 22)
    await follower.resting.wait()  # no notice: B's follower waits for its period

    listed = await two.admin.ListClients(admin_pb.ListClientsRequest(), metadata=bearer(OPS))
    (app,) = [c for c in listed.clients if c.name == "app"]
    assert [k.id for k in app.keys] == [""]  # its configured key only


async def test_a_replica_started_later_knows_the_keys_at_once(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clients = [client("ops", OPS, scopes=["admin"]), client("app", APP)]
    config = replica_config(fake.base_url, redis_url, redis_prefix, auth={"clients": clients})
    one = await start_router(config, clock=ManualClock())
    request = admin_pb.IssueClientKeyRequest(client="app")
    issued = await one.admin.IssueClientKey(request, metadata=bearer(OPS))
    later = await start_router(config, clock=ManualClock())  # read before it serves
    assert not await refused(later, issued.key)
