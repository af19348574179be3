"""The response cache across a config reload: an answer is kept for the route that gave it
(`Runtime._response_cache`: each name's deployments, by where they send it), so a model the
reload sends elsewhere is asked afresh, and one whose route is unchanged keeps its answers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import chat
from tests.router_service.cache.test_response_cache import cached_config, upstream_calls

pytestmark = pytest.mark.timeout(60)

HIT = routing_pb2.CACHE_STATUS_HIT
MISS = routing_pb2.CACHE_STATUS_MISS


def _config(fake: FakeUpstream) -> dict[str, Any]:
    """`chain` (alpha first) and `steady`, on beta."""
    config = cached_config(fake)
    config["models"]["steady"] = {"deployments": [{"provider": "beta", "model": "model-b"}]}
    return config


async def _asked(router: RouterHandle, model: str) -> pb.ChatResponse:
    answer: pb.ChatResponse = await router.stub.Chat(chat(model=model))
    return answer


async def test_a_model_routed_elsewhere_by_a_reload_is_asked_afresh(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = _config(fake)
    router = await start_router(config)
    for model in ("chain", "steady"):
        assert (await _asked(router, model)).route.cache == MISS
    rerouted = copy.deepcopy(config)
    # Beta alone now (a reorder alone would keep the conversation on alpha: its sticky choice)
    rerouted["models"]["chain"]["deployments"] = [
        d for d in rerouted["models"]["chain"]["deployments"] if d["provider"] == "beta"
    ]
    await router.server.reload(SwitchboardConfig.model_validate(rerouted))

    fresh = await _asked(router, "chain")
    assert fresh.route.cache == MISS and fresh.route.deployment == "beta/model-b"
    assert (await _asked(router, "steady")).route.cache == HIT  # its route is as it was
    assert upstream_calls(fake) == 3


async def test_a_reload_that_leaves_a_route_alone_keeps_its_answers(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Another strategy, a key added, a provider's limits: the same deployments answer."""
    config = _config(fake)
    router = await start_router(config)
    assert (await _asked(router, "chain")).route.cache == MISS
    changed = copy.deepcopy(config)
    changed["models"]["chain"]["strategy"] = "weighted"
    changed["providers"]["alpha"]["keys"].append("sk-alpha-3")
    changed["providers"]["alpha"]["queue_timeout_s"] = 1
    await router.server.reload(SwitchboardConfig.model_validate(changed))

    kept = await _asked(router, "chain")
    assert kept.route.cache == HIT and kept.route.deployment == "alpha/model-a"
    assert upstream_calls(fake) == 1


async def test_a_reload_that_changes_what_the_upstream_is_sent_asks_afresh(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The same deployments, told to send something else: Claude's `max_tokens` when the
    caller sets none (a short default cut the answer kept), a header, a reasoning knob."""
    config = _config(fake)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": fake.base_url,
        "keys": ["sk-ant"],
        "default_max_tokens": 16,
    }
    config["models"]["sonnet"] = {"deployments": [{"provider": "claude", "model": "claude-x"}]}
    router = await start_router(config)
    assert (await _asked(router, "sonnet")).route.cache == MISS
    longer = copy.deepcopy(config)
    longer["providers"]["claude"]["default_max_tokens"] = 4096
    await router.server.reload(SwitchboardConfig.model_validate(longer))

    assert (await _asked(router, "sonnet")).route.cache == MISS
    assert [call.body["max_tokens"] for call in fake.state.calls()] == [16, 4096]

    headed = copy.deepcopy(longer)
    headed["providers"]["claude"]["headers"] = {"anthropic-beta": "context-1m-2025-08-07"}
    await router.server.reload(SwitchboardConfig.model_validate(headed))
    assert (await _asked(router, "sonnet")).route.cache == MISS

    unreasoned = copy.deepcopy(headed)
    unreasoned["models"]["sonnet"]["deployments"][0]["reasoning"] = False
    await router.server.reload(SwitchboardConfig.model_validate(unreasoned))
    assert (await _asked(router, "sonnet")).route.cache == MISS
    assert upstream_calls(fake) == 4


async def test_a_reload_that_shortens_the_ttl_serves_no_answer_older_than_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An answer kept for an hour is not served two minutes on once `ttl_s` is one: what the
    operator shortened the TTL for (stale answers) ends with the reload, not an hour later."""
    clock = ManualClock(1_000_000.0)
    config = _config(fake)
    config["cache"]["ttl_s"] = 3600
    router = await start_router(config, clock=clock)
    assert (await _asked(router, "chain")).route.cache == MISS
    shorter = copy.deepcopy(config)
    shorter["cache"]["ttl_s"] = 60
    await router.server.reload(SwitchboardConfig.model_validate(shorter))
    clock.advance(59)
    assert (await _asked(router, "chain")).route.cache == HIT  # still within the new TTL
    clock.advance(2)
    assert (await _asked(router, "chain")).route.cache == MISS
    assert upstream_calls(fake) == 2
