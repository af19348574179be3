"""A caller that leaves while the router takes in an upstream's failure (a Redis round trip:
the deployment's cooldown, the conversation's ban) does not cut it short: the failure was the
upstream's all the same, and the next request of the conversation, or anyone's, must not be
sent back to it (a real router on loopback, its store's writes held as a slow Redis's)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import session_key
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.server.test_routing import ask

pytestmark = pytest.mark.timeout(20)


class HeldCooldown(MemoryStateStore):
    """A store whose armed write of a deployment's cooldown waits for `go`: a round trip the
    caller leaves during."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.armed = False
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def extend_deadline(
        self, name: str, until: float, *, decided_at: float | None = None
    ) -> float:
        if self.armed and name.startswith("dcool:"):
            self.reached.set()
            await self.go.wait()
        return await super().extend_deadline(name, until, decided_at=decided_at)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_caller_leaving_during_a_failures_reaction_does_not_cut_it(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    clock = ManualClock()
    store = HeldCooldown(clock)
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"
    router = await start_router(config, clock=clock, store=store)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    store.armed = True
    request = ask(model="chain", session="s1")
    call = router.stub.ChatStream(request) if stream else router.stub.Chat(request)
    reading = asyncio.ensure_future(call.read() if stream else call)
    await asyncio.wait_for(store.reached.wait(), 10)
    call.cancel()
    with pytest.raises((asyncio.CancelledError, grpc.aio.AioRpcError)):
        await reading
    store.go.set()

    ban = f"sban:{session_key('', 's1')}:alpha"

    async def reacted() -> bool:
        cooled, banned = await store.deadlines(["dcool:alpha/model-a", ban])
        return bool(cooled and banned)

    await eventually(reacted, what="alpha/model-a cooled and alpha banned for s1")
