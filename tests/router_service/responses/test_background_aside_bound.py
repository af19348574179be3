"""A background response back from its cooldown wait, waiting for a place among its client's
running ones again, still counts among those waiting without one (the `bg-aside:` mark is kept
until it has its place back): else another of the client's responses took that mark meanwhile
and stepped aside too, a third started in the place it gave back, and the client ran more
responses than `max_background_per_client` running plus as many waiting aside, however
many times that repeated."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.router_service.engine.test_cooldown_wait_slot import WaitingClock
from tests.router_service.responses.test_background_cooldown_aside import (
    _asleep,
    _cooled,
    _no_marks,
    _start,
    _status,
)
from tests.router_service.server.test_routing import AS_SERVICE, ask

pytestmark = pytest.mark.timeout(60)


async def _cool(fake: FakeUpstream, router: RouterHandle, deployment: str) -> None:
    """`deployment` cools for 300 s (a 503 asking for it)."""
    scenario = Scenario.server_error(503, retry_after="300", times=1)
    fake.state.set_scenario(scenario, model=deployment.split("/")[1])
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask(deployment), metadata=AS_SERVICE, timeout=5)


async def _answered(router: RouterHandle, response_id: str) -> None:
    async def answered() -> bool:
        return await _status(router, response_id) == "completed"

    await eventually(answered, what=f"{response_id} answered")


async def test_one_back_from_its_wait_keeps_its_mark_until_it_has_a_place(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await _cooled(fake, start_router)  # model-b cools until 300; a place a client
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    await _start(router, "resp_one", "beta/model-b")
    await _asleep(clock, 1)  # aside: its place given back
    clock.advance(100.0)
    await _cool(fake, router, "alpha/model-a")  # until 400
    await _start(router, "resp_two", "alpha/model-a")  # the place, held through its wait
    await _asleep(clock, 2)
    clock.advance(200.0)  # the first is back, waiting for the second's place
    await _cool(fake, router, "beta/model-b")  # again, until 600
    clock.advance(100.0)  # the second answered: its place the first's, which steps aside again
    await _answered(router, "resp_two")
    await _asleep(clock, 1)

    await _start(router, "resp_three", "beta/model-b")
    await _asleep(clock, 2)  # waits its cooldown out holding the place: none left aside
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # was started: three at a cap of 1
        await _start(router, "resp_four", "alpha/model-a")
    assert details_from_rpc_error(refused.value).reason == "BACKGROUND_LIMIT"

    clock.advance(200.0)  # the first back, waiting for the third's place: given it at its end
    await _answered(router, "resp_three")
    assert await router.server.jobs.settle(10) == 0
    assert await _status(router, "resp_one") == "completed"
    await _no_marks(router)
