"""A stream with no deadline that waits out the soonest cooldown (every deployment cooling)
keeps its caller's stream slot (`max_concurrent_streams`) for the wait. The slot is taken for
`server.lease_ttl_s` when a call has none, and a 503's `Retry-After` cools a deployment for up
to `cooldowns.server_retry_after_max_s` (300 s): the slot lapsed under the waiting stream, and
its client opened one stream more than it is allowed."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import advance_until_done, eventually
from tests.router_service.auth.helpers import bearer, client
from tests.router_service.server.test_routing import ask, two_providers

pytestmark = pytest.mark.timeout(30)

KEY = "sk-one-stream"


class WaitingClock(ManualClock):
    """A ManualClock whose `sleep` waits for the test to move it (a ManualClock's moves it
    itself): the router's wait for a cooldown holds until then."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeping += 1
        try:
            await self.wait(seconds)
        finally:
            self.sleeping -= 1


def _stream(router: RouterHandle, session: str, timeout: float | None) -> grpc.aio.Call:
    chat = ask(session=session)
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    return router.stub.ChatStream(request, metadata=bearer(KEY), timeout=timeout)


async def _read(call: grpc.aio.Call) -> list[pb.ChatStreamResponse]:
    return [event async for event in call]


async def test_a_stream_waiting_out_a_cooldown_keeps_its_stream_slot(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = WaitingClock()
    caller = client("svc", KEY, max_concurrent_streams=1)
    config = two_providers(fake.base_url, auth={"clients": [caller]})
    config["server"]["lease_ttl_s"] = 120
    config["routing"] = {"max_cooldown_wait_s": 400}  # the 300 s cooldown is waited out
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(503, retry_after="300", times=2))
    with pytest.raises(grpc.aio.AioRpcError):  # both answer 503, both cool for 300 s
        await router.stub.Chat(ask(session="s1"), metadata=bearer(KEY), timeout=5)
    waiting = _stream(router, "s2", None)  # no deadline: waits the cooldown out
    reading = asyncio.ensure_future(_read(waiting))

    async def asleep() -> bool:
        return clock.sleeping == 1

    await eventually(asleep, what="the stream waiting for the cooldown")
    clock.advance(200)  # past the slot's 120 s, the cooldown not over
    another = asyncio.ensure_future(_read(_stream(router, "s3", 5)))
    await advance_until_done(clock, 0.5, another, what="a second stream, answered")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await another
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # the first holds it
    assert not reading.done()
    waiting.cancel()
