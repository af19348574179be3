"""A background response back from its cooldown wait takes its place again by the client's cap
in force now: a reload that raised `responses.max_background_per_client` meanwhile lets it in
beside the client's responses started since. It read the cap of its start: at the old cap of 1
it waited, however many places the new cap left, until none of the client's responses ran."""

from __future__ import annotations

import copy

import grpc
import pytest

from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.router_service.engine.test_cooldown_wait_slot import WaitingClock
from tests.router_service.responses.test_background_cooldown_aside import (
    _asleep,
    _no_marks,
    _start,
    _status,
)
from tests.router_service.server.test_routing import (
    AS_SERVICE,
    ask,
    two_providers,
    with_route_client,
)

pytestmark = pytest.mark.timeout(60)


async def test_one_back_from_its_wait_takes_a_place_by_the_reloaded_cap(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = with_route_client(two_providers(fake.base_url))
    config["responses"] = {"max_background_per_client": 1, "background_heartbeat_s": 1000}
    router = await start_router(copy.deepcopy(config), clock=WaitingClock())
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    for model, at in (("beta/model-b", 0.0), ("alpha/model-a", 100.0)):  # until 300, 400
        clock.advance(at)
        scenario = Scenario.server_error(503, retry_after="300", times=1)
        fake.state.set_scenario(scenario, model=model.split("/")[1])
        with pytest.raises(grpc.aio.AioRpcError):
            await router.stub.Chat(ask(model), metadata=AS_SERVICE, timeout=5)
        if not at:
            await _start(router, "resp_one", "beta/model-b")
            await _asleep(clock, 1)  # aside: its place given back
    config["responses"]["max_background_per_client"] = 2
    await router.server.reload(SwitchboardConfig.model_validate(config))
    await _start(router, "resp_two", "alpha/model-a")
    await _asleep(clock, 2)  # aside too: the new cap lets two wait so
    await _start(router, "resp_three", "alpha/model-a")
    await _asleep(clock, 3)  # waits holding its place: one of two

    clock.advance(200.0)  # the first is back: one place of two is free

    async def one_answered() -> bool:
        return await _status(router, "resp_one") == "completed"

    await eventually(one_answered, what="the first answered in the free place")
    clock.advance(100.0)
    assert await router.server.jobs.settle(10) == 0
    assert [await _status(router, r) for r in ("resp_two", "resp_three")] == ["completed"] * 2
    await _no_marks(router)
