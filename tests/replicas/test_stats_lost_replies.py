"""A caller that leaves while its routing statistics are being written to Redis (the write that
its own result made, `stats_flush_s: 0`): Redis runs that write whether or not anyone waits for
its reply, so the results in it are counted once — not lost, and not written a second time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.replicas.harness import ask, redis_store, replica_config, start_on_reply_clock
from tests.replicas.redis_fixtures import RedisProxy

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("stream", [False, True])
async def test_statistics_whose_caller_left_during_their_write_count_once(
    redis_proxy: RedisProxy,  # first: it outlives the router (it stops through it)
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_prefix: str,
    stream: bool,
) -> None:
    clock = ManualClock(time.time())
    config = replica_config(
        fake.base_url, redis_proxy.url, redis_prefix, routing={"stats_flush_s": 0}
    )
    replica = await start_on_reply_clock(start_router, config, clock)
    redis_proxy.hold_replies_after(b"bkt:stats:")  # Redis counts the result, unheard
    params = ask().params
    call: Any
    if stream:
        call = replica.stub.ChatStream(pb.ChatStreamRequest(params=params))
    else:
        call = replica.stub.Chat(pb.ChatRequest(params=params))
    reading = asyncio.ensure_future(_read_all(call) if stream else call)
    async with asyncio.timeout(15):  # a hang guard: the write reaches Redis
        await redis_proxy.held.wait()
    redis_proxy.sent.clear()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    async with asyncio.timeout(15):  # a bound: the router's writes once its caller has left
        await redis_proxy.sent.wait()
    await redis_proxy.restore()
    await replica.runtime.stats.aclose()  # what a stopping replica does: all written

    [buckets] = await redis_store(replica).read_buckets(["stats:alpha/model-a"])
    assert sum(fields.get("s", 0.0) for fields in buckets.values()) == 1


async def _read_all(call: Any) -> None:
    """A stream's messages, to its end (its success is written there)."""
    async for _ in call:
        pass
