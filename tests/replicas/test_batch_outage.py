"""A batch's state is the shared store's or nothing: during a Redis outage a replica neither keeps
a batch's record (its transitions, counts) on its own local state, where no other replica reads
it, nor takes a cancel there (one the replica taking the batch over never hears of: the batch
would run on to `completed`). A cancel is refused with a 503 to try again; the batch's runner
lets it go, as when its answers cannot be kept."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.state import AppendResult, ResilientStateStore, open_store
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batch_endings_sdk import created
from tests.e2e.test_batches_sdk import chat_line, counts, jsonl, lines_of
from tests.replicas.harness import replica_config, sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_handover import HEARTBEAT_S, settled

Configs = tuple[RedisProxy, dict[str, Any], dict[str, Any]]


@pytest.fixture
def configs(
    redis_proxy: RedisProxy,  # first: it outlives the routers (they stop through it)
    fake: FakeUpstream,
    redis_url: str,
    redis_prefix: str,
) -> Configs:
    """The Redis proxy, the config of a replica reaching Redis through it and of one reaching
    it directly: one line of a batch at a time."""
    batches = {"concurrency": 1, "heartbeat_s": HEARTBEAT_S}
    through = replica_config(fake.base_url, redis_proxy.url, redis_prefix, batches=batches)
    direct = replica_config(fake.base_url, redis_url, redis_prefix, batches=batches)
    return redis_proxy, through, direct


async def test_a_cancel_during_an_outage_is_refused_not_lost(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        fake.state.hold()
        batch = await created(first, chat_line("l1", "a"), chat_line("l2", "a"))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="line one upstream")
        await redis_proxy.cut()
        fake.state.release()  # line one answers; Redis cannot keep it: replica one lets go
        assert await one.server.batch_jobs.settle(10) == 0
        with pytest.raises(openai.InternalServerError) as refused:
            await first.batches.cancel(batch.id)
        assert refused.value.status_code == 503
        await redis_proxy.restore()
        clock.advance(HEARTBEAT_S + 1)  # its claim on Redis expires
        assert (await second.batches.cancel(batch.id)).status == "cancelling"
        assert await two.server.batch_jobs.adopt(two.runtime) == 1
        await settled(two)
        cancelled = await second.batches.retrieve(batch.id)
        assert cancelled.status == "cancelled" and counts(cancelled) == (2, 0, 2)
        assert cancelled.error_file_id
        not_run = await lines_of(second, cancelled.error_file_id)
        assert [(e["custom_id"], e["error"]["code"]) for e in not_run] == [
            ("l1", "batch_cancelled"),
            ("l2", "batch_cancelled"),
        ]
        assert fake.state.count(path="/chat/completions") == 1  # nothing ran after the cancel


class CutsAfterTheBatchIndex(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts (Redis lost, for real: the store falls
    back to local state) once a new batch's id is in its client's index of batches."""

    proxy: RedisProxy | None = None

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        added = await super().append_document(name, data, max_bytes=max_bytes)
        if self.proxy is not None and name.startswith("batch-index:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
        return added


async def test_a_batch_made_as_redis_is_lost_is_refused_not_kept_where_nobody_reads_it(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its record kept on the local state of a replica that lost Redis as it made it, the
    batch was answered 200 and never ran anywhere: no other replica knew it."""
    redis_proxy, raw, direct = configs
    clock = ManualClock(time.time())
    through = SwitchboardConfig.model_validate({"auth": {"open": True}, **raw})
    opened = await open_store(through.state, clock, reply_clock=clock)
    assert isinstance(opened, ResilientStateStore)
    store = CutsAfterTheBatchIndex(opened.shared, opened.local, clock=clock, name=opened.name)
    one = await start_router(through, clock=clock, store=store)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        uploaded = await first.files.create(
            file=("in.jsonl", jsonl(chat_line("l1", "a"))), purpose="batch"
        )
        store.proxy = redis_proxy
        with pytest.raises(openai.InternalServerError) as refused:
            await first.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert refused.value.status_code == 503
        assert await one.server.batch_jobs.settle(10) == 0
        await redis_proxy.restore()
        assert [b async for b in second.batches.list()] == []
        assert fake.state.count(path="/chat/completions") == 0
