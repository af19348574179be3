"""A file is the shared store's or nothing, as a batch is: an upload that a replica could only
keep on its own local state (Redis lost as it wrote it) is refused with a 503 to try again, and
nothing of it is kept there. It was answered 200 with a file that only that replica served: a
batch made over it on another replica was a 404 `file_not_found`, then and once Redis was back."""

from __future__ import annotations

import time

import openai
import pytest

from router_service.clock import ManualClock
from router_service.state import AppendResult, ResilientStateStore
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.replicas.harness import sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_outage import Configs, configs, started_on

__all__ = ["configs"]  # the fixture, used here


class CutsAfterTheFileIndex(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts (Redis lost, for real: the store falls
    back to local state) once a new file's id is in its client's index of files."""

    proxy: RedisProxy | None = None

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        added = await super().append_document(name, data, max_bytes=max_bytes)
        if self.proxy is not None and name.startswith("file-index:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
        return added


async def test_a_file_uploaded_as_redis_is_lost_is_refused_not_kept_where_nobody_reads_it(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheFileIndex, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    content = jsonl(chat_line("l1", "a"))
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy
        with pytest.raises(openai.InternalServerError) as refused:
            await first.files.create(file=("in.jsonl", content), purpose="batch")
        assert refused.value.status_code == 503
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "state_unavailable", refused.value.body
        with pytest.raises(openai.InternalServerError) as during:  # (its index: on Redis)
            await first.files.create(file=("in.jsonl", content), purpose="batch")
        assert during.value.status_code == 503
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call
        # Nothing of it on replica one's local state either (found there when Redis lacks it).
        assert [f.id async for f in first.files.list()] == []
        again = await first.files.create(file=("in.jsonl", content), purpose="batch")
        assert (await second.files.retrieve(again.id)).id == again.id
