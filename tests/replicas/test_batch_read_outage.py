"""Reading batches on a replica that lost Redis: the read falls back to its local state, where a
batch is not (its state is on Redis or nowhere). A retrieve said 404 `batch_not_found` and a
list said there are none (a caller's mistake, or batches gone: a script polling its batch took
it for lost) while they are on Redis all along: unknown now, a 503 `state_unavailable` to try
again, as a cancel is and as files' reads are."""

from __future__ import annotations

import time

import pytest

from router_service.clock import ManualClock
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batch_endings_sdk import created
from tests.e2e.test_batches_sdk import chat_line
from tests.replicas.harness import refused_for_the_outage, sdks_on
from tests.replicas.test_batch_handover import settled
from tests.replicas.test_batch_outage import Configs, configs

__all__ = ["configs"]  # the fixture, used here

pytestmark = pytest.mark.timeout(60)


async def test_reading_batches_during_an_outage_is_a_503_not_a_404_or_an_empty_list(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, _ = configs
    one = await start_router(through, clock=ManualClock(time.time()))
    async with sdks_on(start_edge, one) as (first,):
        batch = await created(first, chat_line("l1", "a"))
        await settled(one)
        assert (await first.batches.retrieve(batch.id)).status == "completed"
        await redis_proxy.cut()
        await refused_for_the_outage(
            lambda: first.batches.retrieve(batch.id), lambda: first.batches.list()
        )
        await redis_proxy.restore()
        one.runtime.store.retry_shared()
        assert (await first.batches.retrieve(batch.id)).status == "completed"
        assert [b.id async for b in first.batches.list()] == [batch.id]
