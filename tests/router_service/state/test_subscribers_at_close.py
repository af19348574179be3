"""A subscriber (the read cache's, the flight notices') still being set up when the store
closes, a read or a claim at shutdown or at a reload that changed the state section: its
connection is closed too once its setup is answered (kept, nothing ever closed it, and the
flights' pinger PINGed on after the store was gone)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from router_service.clock import ManualClock
from router_service.state import RedisStateStore, StoreUnavailableError
from tests.helpers import eventually
from tests.replicas.redis_fixtures import PrivateRedis, RedisProxy

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def proxy(private_redis: PrivateRedis) -> AsyncIterator[RedisProxy]:
    """A proxy to a Redis of this test's own: its clients are this test's."""
    proxy = RedisProxy(private_redis.url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.aclose()


@pytest.mark.parametrize("subscriber", ["read-cache", "flights"])
async def test_a_subscriber_set_up_while_the_store_closes_is_closed_too(
    private_redis: PrivateRedis, proxy: RedisProxy, subscriber: str
) -> None:
    admin = redis.asyncio.Redis.from_url(private_redis.url)
    store = RedisStateStore.from_url(
        proxy.url, prefix="p", clock=ManualClock(), socket_timeout_s=60, connect_timeout_s=60
    )
    try:
        proxy.hold_replies()
        read = subscriber == "read-cache"
        setup = asyncio.ensure_future(
            store.deadlines(["cool:a"]) if read else store.notices.subscribed()
        )
        await proxy.held.wait()  # the subscriber's first reply (`CLIENT ID`, `SUBSCRIBE`)
        await store.aclose()
        await proxy.restore()
        with contextlib.suppress(StoreUnavailableError):  # the read's pooled connect: closed
            assert not await setup  # the claim: no notices heard

        async def only_admin() -> bool:
            return int((await admin.info("clients"))["connected_clients"]) == 1

        await eventually(only_admin, within=5, what="the subscriber's connection closed")
    finally:
        await store.aclose()
        await admin.aclose()
