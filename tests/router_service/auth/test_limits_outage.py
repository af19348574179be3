"""A client's budgets and tpm across a Redis outage (replica A reaches Redis through a proxy the
test cuts, replica B directly): a call's usage corrects its estimate where the estimate was
counted. A call counted on A's own state during the outage and ending once Redis is back took
what it did not use off the shared count, which never held its estimate (the client then spent
past its budget, or its tpm, on every replica); one counted on Redis and ending during the
outage took it off A's own count (A then let the client past its budget on its own)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import replica_config
from tests.replicas.redis_fixtures import RedisProxy, redis_proxy
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client

__all__ = ["redis_proxy"]  # a fixture

pytestmark = pytest.mark.timeout(60)

ALICE = "sk-alice-limits-outage-0123"
# A minute's start: the test's few seconds stay in one rate window.
START = 1_800_000_000.0 - 1_800_000_000.0 % 60


async def replicas(
    fake: FakeUpstream,
    start_router: StartRouter,
    proxy: RedisProxy,
    url: str,
    prefix: str,
    **limits: Any,
) -> tuple[RouterHandle, RouterHandle, ManualClock]:
    """A (through `proxy`, back on Redis one second after it answers again) and B, on one
    clock, serving the client `alice` with `limits`."""
    auth = {"clients": [client("alice", ALICE, **limits)]}
    clock = ManualClock(START)
    through = replica_config(fake.base_url, proxy.url, prefix, auth=auth)
    through["state"].update(socket_timeout_s=1.0, retry_interval_s=1.0)
    a = await start_router(through, clock=clock)
    b = await start_router(replica_config(fake.base_url, url, prefix, auth=auth), clock=clock)
    return a, b, clock


def held_call(replica: RouterHandle, max_tokens: int) -> asyncio.Task[pb.ChatResponse]:
    """Alice's call on `replica`, under way (the test holds the upstream's answer)."""

    async def call() -> pb.ChatResponse:
        ask = chat(model="a", max_tokens=max_tokens)
        answer: pb.ChatResponse = await replica.stub.Chat(ask, metadata=bearer(ALICE))
        return answer

    return asyncio.create_task(call())


async def spent_until_refused(replica: RouterHandle) -> tuple[int, grpc.aio.AioRpcError]:
    """The tokens alice's calls on `replica` used until one was refused, and the refusal."""
    spent = 0
    for _ in range(200):
        try:
            answer = await replica.stub.Chat(chat(model="a"), metadata=bearer(ALICE))
        except grpc.aio.AioRpcError as exc:
            return spent, exc
        spent += answer.completion.usage.total_tokens
    raise AssertionError("never refused")


async def test_a_call_counted_during_an_outage_corrects_no_shared_budget(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_proxy: RedisProxy,
    redis_url: str,
    redis_prefix: str,
) -> None:
    a, b, clock = await replicas(
        fake, start_router, redis_proxy, redis_url, redis_prefix, tokens_per_day=200
    )
    await redis_proxy.cut()
    fake.state.hold()
    call = held_call(a, max_tokens=150)  # its estimate counted on A's own state
    await fake.state.wait_for(lambda: fake.state.held == 1)
    await redis_proxy.restore()
    clock.advance(2.0)  # A asks Redis again: the call ends on shared state
    fake.state.release()
    used = (await call).completion.usage.total_tokens
    assert used < 20

    spent, refused = await spent_until_refused(b)
    # The shared budget never counted A's call: B lets alice spend it whole, not its 200 and
    # the ~140 tokens A's call did not use (taken off it: 357 were spent).
    assert 200 <= spent < 200 + 10
    assert details_from_rpc_error(refused).reason == "QUOTA_EXHAUSTED"


async def test_a_call_counted_on_redis_ending_in_an_outage_corrects_no_local_budget(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_proxy: RedisProxy,
    redis_url: str,
    redis_prefix: str,
) -> None:
    a, _, _ = await replicas(
        fake, start_router, redis_proxy, redis_url, redis_prefix, tokens_per_day=200
    )
    fake.state.hold()
    call = held_call(a, max_tokens=150)  # its estimate counted on Redis
    await fake.state.wait_for(lambda: fake.state.held == 1)
    await redis_proxy.cut()
    fake.state.release()
    assert (await call).completion.usage.total_tokens < 20  # it ends in the outage

    # A counts alone, from zero: up to the budget, not past it by what that call did not use
    # (taken off A's own count, which never held it: 345 were spent).
    spent, refused = await spent_until_refused(a)
    assert 200 <= spent < 200 + 10
    assert details_from_rpc_error(refused).reason == "QUOTA_EXHAUSTED"


async def test_a_call_counted_during_an_outage_corrects_no_shared_tpm(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_proxy: RedisProxy,
    redis_url: str,
    redis_prefix: str,
) -> None:
    a, b, clock = await replicas(fake, start_router, redis_proxy, redis_url, redis_prefix, tpm=1000)
    fake.state.set_scenario(Scenario(stall_after_chunks=3))
    ask = chat_stream(model="a", max_tokens=600)
    open_on_b = b.stub.ChatStream(ask, metadata=bearer(ALICE))  # ~601 on Redis while it runs
    await anext(aiter(open_on_b))
    fake.state.clear_scenarios()
    await redis_proxy.cut()
    fake.state.hold()
    call = held_call(a, max_tokens=300)  # counted on A's own state
    await fake.state.wait_for(lambda: fake.state.held == 1)
    await redis_proxy.restore()
    clock.advance(2.0)  # A asks Redis again: the call ends on shared state
    fake.state.release()
    await call

    # The shared minute still holds B's open stream: 600 more do not fit. (A's call took the
    # ~297 tokens it did not use off it, and they did.)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await b.stub.Chat(chat(model="a", max_tokens=500), metadata=bearer(ALICE))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(refused.value).rate_limit is not None
    open_on_b.cancel()
