"""A file delete that loses Redis as it writes the file's tombstone is a 503 with nothing done:
the file is there on every replica once Redis is back (the retried delete deletes it), and no
tombstone is left on the deleting replica's local state. It was left there, read by that replica
alone while Redis lacked one: that replica took the file for deleted, the others did not."""

from __future__ import annotations

import time

import openai
import pytest

from router_service.batches._file_names import file_names
from router_service.clock import ManualClock
from router_service.state import PutResult, ResilientStateStore
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.replicas.harness import sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_outage import Configs, configs, started_on

__all__ = ["configs"]  # the fixture, used here


class CutsBeforeTheTombstone(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts (Redis lost, for real: the store falls
    back to local state) just before it writes the document named `at` (a file's tombstone)."""

    proxy: RedisProxy | None = None
    at = ""

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        if self.proxy is not None and name == self.at:
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_a_delete_that_loses_redis_at_its_tombstone_is_a_503_with_nothing_done(
    configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsBeforeTheTombstone, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    content = jsonl(chat_line("l1", "a"))
    async with sdks_on(start_edge, one, two) as (first, second):
        kept = await first.files.create(file=("in.jsonl", content), purpose="batch")
        tombstone = file_names("", kept.id).deleted
        store.at, store.proxy = tombstone, redis_proxy
        with pytest.raises(openai.InternalServerError) as refused:
            await first.files.delete(kept.id)
        assert refused.value.status_code == 503
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "state_unavailable", refused.value.body
        assert (await store.local.get_documents([tombstone])) == [None]  # nothing half-done
        await redis_proxy.restore()
        store.retry_shared()  # back on Redis at its next call
        for sdk in (first, second):  # there on both, as it was all along
            assert (await sdk.files.retrieve(kept.id)).id == kept.id
        assert (await first.files.delete(kept.id)).deleted  # the retry deletes it
        for sdk in (first, second):
            with pytest.raises(openai.NotFoundError):
                await sdk.files.retrieve(kept.id)
