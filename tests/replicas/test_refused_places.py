"""A file or batch refused with a 503 as Redis is lost (its id in its client's index on Redis
already) takes no place of `files.max_files` once Redis answers again: the refusal's removal of
its id, refused itself during the outage, is made then. It kept the place until the period
ended (30 days by default), the client refused with a 429 at its bound meanwhile."""

from __future__ import annotations

import time

import openai
import pytest

from router_service.clock import ManualClock
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.replicas.harness import sdks_on
from tests.replicas.test_batch_outage import Configs, CutsAfterTheBatchIndex, configs, started_on
from tests.replicas.test_file_outage import CutsAfterTheFileIndex

__all__ = ["configs"]  # the fixture, used here


async def test_an_upload_refused_as_redis_is_lost_frees_its_place_once_redis_answers(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    through["files"] = direct["files"] = {"max_files": 2}
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheFileIndex, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    content = jsonl(chat_line("l1", "a"))
    async with sdks_on(start_edge, one, two) as (first, second):
        kept = await first.files.create(file=("a.jsonl", content), purpose="batch")
        store.proxy = redis_proxy  # cut once the next one's id is on Redis's index
        with pytest.raises(openai.InternalServerError) as refused:
            await first.files.create(file=("b.jsonl", content), purpose="batch")
        assert refused.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call
        again = await first.files.create(file=("c.jsonl", content), purpose="batch")
        listed = [f.id async for f in second.files.list()]
    assert sorted(listed) == sorted([kept.id, again.id])


async def test_a_batch_refused_as_redis_is_lost_frees_its_place_once_redis_answers(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    through["files"] = direct["files"] = {"max_files": 2}
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheBatchIndex, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        # Bad lines: each batch fails as it is made (no line runs, no file is written).
        uploaded = await first.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")

        async def create() -> str:
            made = await first.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            assert made.status == "failed"
            return made.id

        made = [await create()]
        store.proxy = redis_proxy  # cut once the next one's id is on Redis's index
        with pytest.raises(openai.InternalServerError) as refused:
            await create()
        assert refused.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()
        made.append(await create())
        listed = [b.id async for b in second.batches.list()]
    assert sorted(listed) == sorted(made)


async def test_an_index_made_as_redis_is_lost_is_not_kept_where_one_replica_reads_it(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A client's first upload of the period found no index on Redis, then Redis was lost: its
    index was made on the replica's local state, where every later upload of the client's on
    that replica was indexed too, also once Redis was back (for two periods, 60 days): listed
    there alone, and never on another replica."""
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheFileIndex, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    content = jsonl(chat_line("l1", "a"))
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy  # cut once Redis said it has no index of the client's
        with pytest.raises(openai.InternalServerError) as refused:
            await first.files.create(file=("a.jsonl", content), purpose="batch")
        assert refused.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()
        kept = await first.files.create(file=("b.jsonl", content), purpose="batch")
        assert [f.id async for f in second.files.list()] == [kept.id]
