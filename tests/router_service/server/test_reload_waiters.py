"""A config reload and the calls waiting for a key slot (`KeyPool.hand_over`): they keep their
turn in one queue with the calls that arrive after it, and wait under the reloaded limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.processes import params, read_events

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


def _one_key(fake_url: str, max_in_flight: int, state: dict[str, str]) -> dict[str, Any]:
    """`solo` on alpha's one key, which takes `max_in_flight` calls at once; others wait."""
    config = base_config(fake_url, state=state)
    key = {"key": "sk-alpha-1", "max_in_flight": max_in_flight}
    config["providers"]["alpha"].update(keys=[key], queue_timeout_s=30)
    config["models"] = {"solo": {"deployments": [{"provider": "alpha", "model": "model-a"}]}}
    return config


async def _waiting(router: RouterHandle, n: int) -> None:
    async def queued() -> bool:  # polled: joining the queue is no event to wait on
        return router.runtime.pools["alpha"].waiting == n

    await eventually(queued, what=f"{n} call(s) waiting for alpha's key")


async def _in_flight(router: RouterHandle, n: int) -> None:
    async def held() -> bool:
        return await router.leases_held() == n

    await eventually(held, what=f"{n} slot(s) of alpha's key held")


async def test_calls_waiting_across_a_reload_keep_their_turn_under_the_new_limit(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str]
) -> None:
    router = await start_router(_one_key(fake.base_url, 2, state_section))
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    holders = [router.stub.ChatStream(pb.ChatStreamRequest(params=params("solo"))) for _ in "ab"]
    for holder in holders:
        assert (await anext(aiter(holder))).WhichOneof("event") == "route"
    early = router.stub.ChatStream(pb.ChatStreamRequest(params=params("solo")))
    early_route = asyncio.ensure_future(anext(aiter(early)))
    await _waiting(router, 1)

    lowered = SwitchboardConfig.model_validate(_one_key(fake.base_url, 1, state_section))
    await router.server.reload(lowered)
    # The early caller waits in the reloaded pool's queue, ahead of those who come after.
    assert router.runtime.pools["alpha"].waiting == 1
    late = router.stub.ChatStream(pb.ChatStreamRequest(params=params("solo")))
    late_route = asyncio.ensure_future(anext(aiter(late)))
    await _waiting(router, 2)

    holders[0].cancel()  # one slot of two back: under the new limit of one, nobody enters
    await _in_flight(router, 1)
    assert router.runtime.pools["alpha"].waiting == 2 and not early_route.done()
    holders[1].cancel()  # the early caller enters first, the late one still waits
    assert (await early_route).route.deployment == "alpha/model-a"
    assert router.runtime.pools["alpha"].waiting == 1 and not late_route.done()

    fake.state.release()
    assert (await read_events(early))[-1] == "summary"
    assert (await late_route).route.deployment == "alpha/model-a"
    fake.state.release()
    assert (await read_events(late))[-1] == "summary"
    assert await router.leases_held() == 0
