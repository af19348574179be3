"""A background response waiting out a cooldown (every deployment of its model cooling: it has
no caller on a socket, it waits where a foreground call is refused) steps aside for the wait:
its place among its client's running responses (`responses.max_background_per_client`) goes
back, so the client's responses of another model start meanwhile. It held the place for the
whole wait (up to 300 s), and a client at its cap got a 429 for every other response. Back from
the wait it takes a place again before it is routed, once one is free; no more of a client's
responses wait so than its cap (one past it waits holding its place)."""

from __future__ import annotations

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import client_scoped
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.router_service.engine.test_cooldown_wait_slot import WaitingClock
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    ask,
    two_providers,
    with_route_client,
)

pytestmark = pytest.mark.timeout(60)


class CountingClock(WaitingClock):
    """A WaitingClock counting the waits begun on it (`began`)."""

    def __init__(self) -> None:
        super().__init__()
        self.began = 0

    async def sleep(self, seconds: float) -> None:
        self.began += 1
        await super().sleep(seconds)


async def _cooled(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """beta/model-b cools for 300 s (a 503 asking for it); one background response a client."""
    config = with_route_client(two_providers(fake.base_url))
    # Its heartbeat outlasts the clock's jumps (the watcher beats on the event loop's time).
    config["responses"] = {"max_background_per_client": 1, "background_heartbeat_s": 1000}
    router = await start_router(config, clock=CountingClock())
    fake.state.set_scenario(Scenario.server_error(503, retry_after="300", times=1), model="model-b")
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask("beta/model-b"), metadata=AS_SERVICE, timeout=5)
    return router


async def _start(router: RouterHandle, response_id: str, model: str, stream: bool = False) -> None:
    queued = {"id": response_id, "object": "response", "created_at": 1, "output": []}
    request = pb.StartBackgroundResponseRequest(
        chat=ask(model), response_json=orjson.dumps(queued).decode(), stream=stream
    )
    await router.stub.StartBackgroundResponse(request, metadata=AS_SERVICE)


async def _status(router: RouterHandle, response_id: str) -> str:
    loaded = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=[response_id]), metadata=AS_SERVICE
    )
    return str(loaded.responses[0].background_status)


async def _no_marks(router: RouterHandle) -> None:
    """Neither the client's places nor its waits' marks are held any more."""
    for group in ("bg-aside:", "bg-jobs:"):
        assert await router.runtime.store.members(group + client_scoped("svc", "")) == {}


async def _asleep(clock: WaitingClock, count: int) -> None:
    async def asleep() -> bool:
        return clock.sleeping == count

    await eventually(asleep, what=f"{count} response(s) waiting out the cooldown")


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "streamed"])
async def test_a_response_waiting_out_a_cooldown_lets_another_start(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    await _start(router, "resp_wait", "beta/model-b", stream=stream)
    await _asleep(clock, 1)

    await _start(router, "resp_other", "alpha/model-a")  # was a 429: the place was held

    async def answered() -> bool:
        return await _status(router, "resp_other") == "completed"

    await eventually(answered, what="the other model's response answered meanwhile")
    assert await _status(router, "resp_wait") == "in_progress"
    clock.advance(300.0)  # the cooldown over: it takes the free place, and is answered
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_wait") == "completed"
    assert fake.state.count(model="model-b") == 2
    await _no_marks(router)


async def test_no_more_wait_aside_than_the_cap_and_one_back_waits_for_a_place(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The first waits aside; the second (same model) waits holding the place, so a third is
    refused. After the cooldown the first waits for the second's place, and takes it as it is
    given back (the clock not moved: no poll's interval)."""
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    await _start(router, "resp_one", "beta/model-b")
    await _asleep(clock, 1)
    await _start(router, "resp_two", "beta/model-b")
    await _asleep(clock, 2)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _start(router, "resp_three", "alpha/model-a")
    assert details_from_rpc_error(refused.value).reason == "BACKGROUND_LIMIT"

    clock.advance(300.0)

    async def two_answered() -> bool:
        return await _status(router, "resp_two") == "completed"

    await eventually(two_answered, what="the second answered, holding its place")
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_one") == "completed"


async def test_a_response_cancelled_while_aside_gives_its_mark_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    await _start(router, "resp_gone", "beta/model-b")
    await _asleep(clock, 1)
    scoped = client_scoped("svc", "")  # aside: its wait's mark held, its place given back
    assert await router.runtime.store.members("bg-aside:" + scoped) == {"resp_gone": 1}
    assert await router.runtime.store.members("bg-jobs:" + scoped) == {}
    cancel = pb.CancelResponseRequest(id="resp_gone")
    await router.stub.CancelResponse(cancel, metadata=AS_SERVICE)
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_gone") == "cancelled"
    await _no_marks(router)


async def test_a_response_back_from_its_wait_rechecks_the_cooldown(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Back from its wait, it waited for a place (the second's, streamed meanwhile); model-b
    cooled again meanwhile: it waits that out too (aside again), rather than being sent to
    model-b while it cools."""
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    assert isinstance(clock, CountingClock)
    await _start(router, "resp_one", "beta/model-b")
    await _asleep(clock, 1)
    await _start(router, "resp_two", "beta/model-b", stream=True)
    await _asleep(clock, 2)
    # The second's stream stops after its first event: the first waits for its place meanwhile.
    fake.state.set_scenario(Scenario(held_after_chunks=1, times=1), model="model-b")
    clock.advance(300.0)
    await fake.state.wait_for(lambda: fake.state.held == 1)
    cool = Scenario.server_error(503, retry_after="300", times=1)
    fake.state.set_scenario(cool, model="model-b", text="cool")
    with pytest.raises(grpc.aio.AioRpcError):  # model-b cools again, until 600
        await router.stub.Chat(ask("beta/model-b", text="cool"), metadata=AS_SERVICE, timeout=5)
    sent = fake.state.count(model="model-b")
    began = clock.began
    fake.state.release()  # the second answered: the first has its place, model-b still cools

    async def moved() -> bool:  # waiting once more, or (was) answered
        return clock.began > began or await _status(router, "resp_one") == "completed"

    await eventually(moved, what="the first waiting again")
    assert fake.state.count(model="model-b") == sent  # was sent while model-b cooled
    assert await _status(router, "resp_one") == "in_progress"
    places = await router.runtime.store.members("bg-jobs:" + client_scoped("svc", ""))
    assert places == {}  # aside again: its place given back for the wait
    clock.advance(300.0)
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_one") == "completed"
    assert fake.state.count(model="model-b") == sent + 1
    await _no_marks(router)
