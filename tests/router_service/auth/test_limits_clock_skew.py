"""Replicas on one Redis whose clocks differ by a few milliseconds (NTP keeps hosts that close,
not closer) around a minute's turn: a client's rpm and tpm count the same sliding minute on
both. The replica still before the turn wrote its minute back over the one the replica past it
had begun, with nothing carried (neither minute): every call of the minute just ended was
forgotten, and the client was admitted its whole rpm again at once."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import replica_config
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client

pytestmark = pytest.mark.timeout(60)

ALICE = "sk-alice-clock-skew-0123"
TURN = 1_800_000_000.0 - 1_800_000_000.0 % 60  # a minute's turn
SKEW_S = 0.010


async def skewed(
    fake: FakeUpstream, start_router: StartRouter, url: str, prefix: str, **limits: int
) -> tuple[RouterHandle, RouterHandle]:
    """A replica 10 ms before the turn, and one 10 ms past it, serving `alice` with `limits`."""
    config = replica_config(
        fake.base_url, url, prefix, auth={"clients": [client("alice", ALICE, **limits)]}
    )
    behind = await start_router(config, clock=ManualClock(TURN - SKEW_S))
    ahead = await start_router(config, clock=ManualClock(TURN + SKEW_S))
    return behind, ahead


async def refused(replica: RouterHandle, max_tokens: int = 16) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        ask = chat(model="a", max_tokens=max_tokens)
        await replica.stub.Chat(ask, metadata=bearer(ALICE))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    return caught.value


async def test_a_replica_behind_the_turn_forgets_no_minute(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    behind, ahead = await skewed(fake, start_router, redis_url, redis_prefix, rpm=3)
    for _ in range(3):
        await behind.stub.Chat(chat(model="a"), metadata=bearer(ALICE))
    await refused(ahead)  # the minute just ended counts in full at the turn
    # The replica still before the turn counts the same three (it admitted a fourth: the
    # minute it wrote back had none).
    details = details_from_rpc_error(await refused(behind))
    assert details.rate_limit is not None and details.rate_limit.remaining_requests == 0
    await refused(ahead)
    assert len(fake.state.calls()) == 3


async def test_a_replica_behind_the_turn_counts_the_tokens_of_the_minute_begun(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    behind, ahead = await skewed(fake, start_router, redis_url, redis_prefix, tpm=1000)
    fake.state.set_scenario(Scenario(stall_after_chunks=3))
    ask = chat_stream(model="a", max_tokens=600)
    open_stream = ahead.stub.ChatStream(ask, metadata=bearer(ALICE))  # ~601 while it runs
    await anext(aiter(open_stream))
    fake.state.clear_scenarios()
    await refused(behind, max_tokens=500)  # the minute holds the open stream's 601
    await refused(ahead, max_tokens=500)
    open_stream.cancel()
