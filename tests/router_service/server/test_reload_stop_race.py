"""A router stopped while a reload that renamed a provider hands over (its store state carried
before the new config serves, `_reload.carried_over`): the reload is cancelled (`reloading` ends
before the stop), its hand-over goes on, and the stop closes the runtime it ends up serving
from, with the state store and HTTP client it took over, not the one it replaced."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.helpers import eventually
from tests.replicas.redis_fixtures import (
    RedisProxy,
    redis_prefix,
    redis_proxy,
    redis_state,
    redis_url,
)
from tests.router_service.server.test_reload_carry_over import _one_alpha_key, renamed

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis_prefix", "redis_proxy", "redis_url"]  # fixtures


async def test_a_stop_during_a_renaming_reload_closes_the_runtime_it_handed_over_to(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_proxy: RedisProxy,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = redis_state(redis_proxy.url, redis_prefix)
    config = {**_one_alpha_key(fake.base_url), "state": state}
    router = await start_router(config, clock=ManualClock(time.time()))
    redis_proxy.hold_replies()  # the carry's first read waits on Redis's reply
    reload = asyncio.ensure_future(router.server.reload(renamed(config, "renamed")))
    await asyncio.sleep(0)  # the reload's first step: its hand-over started, shielded
    await redis_proxy.held.wait()
    reload.cancel()  # as `reloading` does when the router stops
    with contextlib.suppress(asyncio.CancelledError):
        await reload
    stop = asyncio.ensure_future(router.server.shutdown(0))

    async def closing() -> bool:  # the stop went as far as it can with Redis's replies held
        return stop.done() or "the config reload under way hands over first" in caplog.text

    with caplog.at_level("INFO", logger="switchboard.router"):
        await eventually(closing, what="the stop closing its runtime")
        await redis_proxy.restore()
        await stop

    assert "renamed" in router.runtime.pools  # the reload's runtime, closed with its client
    assert router.runtime.http.is_closed
