"""A Realtime session's usage reaches its client's tpm however long the session lasted: its
`response.done` tokens count in the minute they came, not in the one the session opened in
(which, past two minutes, no longer counts: they were dropped, and a client held to a tpm could
use any number of tokens in sessions that last); and in its budgets, in the period they came in
(a session begun before midnight spent the new day's tokens in the day that had ended)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from clients import RouterClient, RouterError
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.helpers import advance_until_done
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.auth.helpers import client
from tests.router_service.server.test_realtime_rpc import (
    KEY,
    ask_then_close,
    open_session,
    realtime_config,
)

pytestmark = pytest.mark.timeout(30)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures


@pytest.mark.parametrize("minutes", [0, 3])
async def test_a_long_sessions_usage_counts_in_tpm(
    fake: FakeUpstream, start_router: StartRouter, minutes: int, state_section: dict[str, Any]
) -> None:
    clock = ManualClock(1_800_000_000.0)  # the start of a minute
    caller = client("svc", KEY, tpm=1000)
    config = realtime_config(fake, auth={"clients": [caller]}, state=state_section)
    router = await start_router(config, clock=clock)
    async with RouterClient(router.server.address) as grpc_client:
        first, _ = await open_session(grpc_client)
        clock.advance(60.0 * minutes + 1)  # the session lasts; its answer comes now
        await ask_then_close(first)
        again, route = await open_session(grpc_client)
        await again.aclose()
    assert route.rate_limit.remaining_tokens == 1000 - 13  # "You said: hi": 3 + 10 tokens


async def test_a_session_past_midnight_counts_in_the_new_days_budget(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    # Opened before 00:00 UTC, answered after: its tokens went to the day that had ended (its
    # bucket no longer read), so the new day's budget never saw them.
    clock = ManualClock(dt.datetime(2026, 12, 4, 23, 59, 30, tzinfo=dt.UTC).timestamp())
    caller = client("svc", KEY, tokens_per_day=10)
    config = realtime_config(fake, auth={"clients": [caller]}, state=state_section)
    router = await start_router(config, clock=clock)
    async with RouterClient(router.server.address) as grpc_client:
        first, _ = await open_session(grpc_client)
        clock.advance(60.0)  # 00:00:30: a new day
        await ask_then_close(first)  # 13 tokens, today
        with pytest.raises(RouterError) as refused:
            await open_session(grpc_client)
    assert refused.value.details.reason == "QUOTA_EXHAUSTED"


@pytest.mark.parametrize("minutes", [0, 3])
async def test_a_long_sessions_usage_counts_in_its_keys_tpm(
    fake: FakeUpstream, start_router: StartRouter, minutes: int, state_section: dict[str, Any]
) -> None:
    # The upstream key's tpm, like the client's: a session answered three minutes after it
    # opened settled its key lease in the minute it opened in (no longer read), so the key's
    # tpm never saw its tokens and the next session was sent to the spent key.
    clock = ManualClock(1_800_000_000.0)
    config = realtime_config(fake, state=state_section)
    config["models"]["voice"]["deployments"] = [
        {"provider": "alpha", "model": "rt-a", "realtime": True}
    ]
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "tpm": 10}]
    router = await start_router(config, clock=clock)
    async with RouterClient(router.server.address) as grpc_client:
        first, _ = await open_session(grpc_client)
        clock.advance(60.0 * minutes + 1)
        await ask_then_close(first)  # 13 tokens: past the key's 10 this minute
        # Refused once its wait for the key (queue_timeout_s, 5 s) ends on the router's clock.
        opening = asyncio.ensure_future(open_session(grpc_client))
        await advance_until_done(clock, 1.0, opening, what="the spent key's session refused")
        with pytest.raises(RouterError) as refused:
            await opening
    assert refused.value.details.reason == "NO_CAPACITY"
