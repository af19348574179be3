"""A batch refused as Redis is lost (`BatchRecords.begin`'s StoreUnavailableError) has what was
kept of it deleted where the store takes each delete: one delete refused (its document on Redis,
or nowhere: only Redis can tell) does not leave the others' documents kept on this replica's
local state."""

from __future__ import annotations

import logging
import time

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.state import PutResult, ResilientStateStore
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batch_endings_sdk import created
from tests.e2e.test_batches_sdk import chat_line
from tests.replicas.harness import sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_handover import HEARTBEAT_S, settled
from tests.replicas.test_batch_outage import Configs, configs, started_on

__all__ = ["configs"]  # the fixture


class CutsBeforeTheLines(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts (Redis lost: the store falls back to
    local state) as a new batch's kept lines are put: they are kept locally, and the batch's
    record is refused (`shared_throughout`) before it is put anywhere."""

    proxy: RedisProxy | None = None
    lines = ""

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if self.proxy is not None and name.startswith("batch-lines:"):
            proxy, self.proxy = self.proxy, None
            self.lines = name
            await proxy.cut()
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_a_refused_delete_of_a_refused_batch_leaves_none_of_the_rest(
    fake: FakeUpstream,
    configs: Configs,
    start_router: StartRouter,
    start_edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its record's delete refused (not kept locally: only Redis could say whether it holds
    it), the clean-up stopped there: its lines, kept on local state during the outage, stayed
    there for `files.ttl_s`, read by this replica once Redis answered again. (That delete is
    queued for Redis now: see the next test.)"""
    redis_proxy, through, _ = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsBeforeTheLines, through, clock, start_router)
    async with sdks_on(start_edge, one) as (first,):
        store.proxy = redis_proxy
        with caplog.at_level(logging.WARNING, logger="switchboard.router"):
            with pytest.raises(openai.InternalServerError) as refused:
                await created(first, chat_line("l1", "a"))
        assert refused.value.status_code == 503 and store.lines
        assert await store.get_documents([store.lines]) == [None]
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call
        assert await store.get_documents([store.lines]) == [None]
        assert [b async for b in first.batches.list()] == []
        assert fake.state.count(path="/chat/completions") == 0
    # Its record's delete (not kept locally) is not refused now: made on Redis once it answers.
    said = [r.getMessage() for r in caplog.records if "not deleted" in r.getMessage()]
    assert said == []


class LostAfterTheRecord(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts once a new batch's record is put on
    Redis, and notices at once (another call of the replica's fails): the record on Redis, the
    batch refused (`shared_throughout`), its record's delete refused in turn (not kept locally)."""

    proxy: RedisProxy | None = None

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        if self.proxy is not None and name.startswith("batch:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
            assert await self.get_documents([name]) == [None]  # Redis lost: none kept here
        return kept


async def test_a_batch_refused_with_its_record_on_redis_is_not_run_where_it_is_taken_over(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its record's delete was dropped (refused during the outage, never made once Redis
    answered): a replica taking its running-index entry over found the record and ran the
    batch its client was told was refused (a 503), its lines sent upstream."""
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(LostAfterTheRecord, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy
        with pytest.raises(openai.InternalServerError) as refused:
            await created(first, chat_line("l1", "a"))
        assert refused.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()
        assert [b async for b in first.batches.list()] == []  # back on Redis
        clock.advance(HEARTBEAT_S + 1)  # its claim on Redis expires
        await two.server.batch_jobs.adopt(two.runtime)
        await settled(two)
        assert [b async for b in second.batches.list()] == []
    assert fake.state.count(path="/chat/completions") == 0
