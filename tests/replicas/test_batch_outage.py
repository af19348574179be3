"""A batch's state is the shared store's or nothing: during a Redis outage a replica neither keeps
a batch's record (its transitions, counts) on its own local state, where no other replica reads
it, nor takes a cancel there (one the replica taking the batch over never hears of: the batch
would run on to `completed`). A cancel is refused with a 503 to try again; the batch's runner
lets it go, as when its answers cannot be kept."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import openai
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import ENDED
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.state import AppendResult, PutResult, ResilientStateStore, open_store
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batch_endings_sdk import created
from tests.e2e.test_batches_sdk import chat_line, counts, jsonl, lines_of
from tests.replicas.harness import replica_config, sdks_on
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_batch_handover import HEARTBEAT_S, settled

Configs = tuple[RedisProxy, dict[str, Any], dict[str, Any]]
Store = TypeVar("Store", bound=ResilientStateStore)


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


async def started_on(
    kind: type[Store], config: dict[str, Any], clock: ManualClock, start_router: StartRouter
) -> tuple[RouterHandle, Store]:
    """A replica of `config` on a store of `kind` (as `open_store` makes it otherwise)."""
    through = SwitchboardConfig.model_validate({"auth": {"open": True}, **config})
    opened = await open_store(through.state, clock, reply_clock=clock)
    assert isinstance(opened, ResilientStateStore)
    store = kind(opened.shared, opened.local, clock=clock, name=opened.name)
    return await start_router(through, clock=clock, store=store), store


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
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterTheBatchIndex, through, clock, start_router)
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


async def test_a_batch_created_during_an_outage_is_a_503_not_its_file_not_found(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its input file read from local state (where it is not): the file was said not to
    exist (404 `file_not_found`), a caller's mistake, while it is on Redis all along."""
    redis_proxy, through, _ = configs
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    async with sdks_on(start_edge, one) as (first,):
        uploaded = await first.files.create(
            file=("in.jsonl", jsonl(chat_line("l1", "a"))), purpose="batch"
        )
        await redis_proxy.cut()
        with pytest.raises(openai.InternalServerError) as refused:
            await first.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert refused.value.status_code == 503
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["code"] == "state_unavailable", refused.value.body
        await redis_proxy.restore()
        one.runtime.store.retry_shared()  # back on Redis at its next call
        assert [b async for b in first.batches.list()] == []
        assert fake.state.count(path="/chat/completions") == 0


async def test_a_batch_starting_during_an_outage_is_let_go_not_failed_for_its_file(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its input file read from local state (where it is not) as it had a slot: it was found
    gone, the batch's end mark `input_file_not_found` kept there, and the replica that took it
    over once Redis answered ended it so (`failed`, its file there all along)."""
    redis_proxy, through, _ = configs
    through["batches"]["max_running"] = 1
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    async with sdks_on(start_edge, one) as (first,):
        fake.state.hold()
        running = await created(first, chat_line("a", "a"))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
        waiting = await created(first, chat_line("w1", "a"), chat_line("w2", "a"))
        await redis_proxy.cut()
        fake.state.release()  # the first lets go (its answer not kept); the second starts
        assert await one.server.batch_jobs.settle(10) == 0
        await redis_proxy.restore()
        clock.advance(HEARTBEAT_S + 1)  # both claims on Redis expire
        for _ in range(2):  # one slot: one batch a round
            assert await one.server.batch_jobs.adopt(one.runtime) == 1
            await settled(one)
        for batch in (running, waiting):
            done = await first.batches.retrieve(batch.id)
            assert done.status == "completed" and done.errors is None, done.errors
        assert fake.state.count(path="/chat/completions") == 4  # "a" twice, then w1 and w2


class MissesAFileOnce(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts for its next read of a file's content
    (that read falls back to local state, where it is not), and restores at once after (or
    of another document: `kind`)."""

    proxy: RedisProxy | None = None
    kind = "file-data:"

    async def get_documents(self, names: Sequence[str]) -> list[bytes | None]:
        if self.proxy is None or not any(name.startswith(self.kind) for name in names):
            return await super().get_documents(names)
        proxy, self.proxy = self.proxy, None
        await proxy.cut()
        try:
            return await super().get_documents(names)
        finally:
            await proxy.restore()
            self.retry_shared()  # the next call finds the shared store again


async def test_a_batch_whose_file_read_fell_back_as_it_starts_is_not_failed_for_it(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The store answering again as soon as its input file was read from local state: the
    batch was failed `input_file_not_found` for all to read, its file there all along."""
    redis_proxy, through, _ = configs
    through["batches"]["max_running"] = 1
    clock = ManualClock(time.time())
    one, store = await started_on(MissesAFileOnce, through, clock, start_router)
    async with sdks_on(start_edge, one) as (first,):
        fake.state.hold()
        await created(first, chat_line("a", "a"))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
        waiting = await created(first, chat_line("w1", "a"))
        store.proxy = redis_proxy
        fake.state.release()  # the first completes; the second starts, its file read locally
        assert await one.server.batch_jobs.settle(10) == 0
        assert (await first.batches.retrieve(waiting.id)).status == "validating"  # let go
        # (the first batch's end, written as the store was cut, was let go too)
        clock.advance(HEARTBEAT_S + 1)  # their claims expire
        for _ in range(2):  # one slot: one batch a round
            await one.server.batch_jobs.adopt(one.runtime)
            await settled(one)
        done = await first.batches.retrieve(waiting.id)
        assert done.status == "completed" and done.errors is None, done.errors


class CutsAfterARecord(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts once a batch's record of one of
    `statuses` is on Redis: what its replica writes or clears after reaches its local state
    alone."""

    proxy: RedisProxy | None = None
    statuses: frozenset[str] = ENDED

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        record = name.startswith("batch:") and bpb.Batch.FromString(data).status in self.statuses
        if self.proxy is not None and record:
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
        return kept


async def test_a_batch_ended_as_redis_was_lost_has_its_kept_lines_cleared_where_taken_over(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its end on Redis, its kept lines' deletion not (an outage): the replica that took it
    out of the running index left them there for the batch's whole `ttl_s` (30 days)."""
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterARecord, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy
        batch = await created(first, chat_line("l1", "a"))
        assert await one.server.batch_jobs.settle(10) == 0
        await redis_proxy.restore()
        assert (await second.batches.retrieve(batch.id)).status == "completed"
        assert await two.runtime.batches.kept_lines("", batch.id) is not None  # left on Redis
        clock.advance(HEARTBEAT_S + 1)  # its claim on Redis expires
        assert await two.server.batch_jobs.adopt(two.runtime) == 0  # ended: only delisted
        assert await two.runtime.batches.runs.running() == []
        assert await two.runtime.batches.kept_lines("", batch.id) is None


async def test_a_batch_answered_as_redis_is_lost_is_run_once_it_answers(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its record on Redis, its place among the batches running kept on local state alone:
    answered 200, it read `validating` for good, no replica ever taking it over."""
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsAfterARecord, through, clock, start_router)
    store.statuses = frozenset({"validating"})  # a new batch's
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy  # (uploading its file puts no batch's record)
        batch = await created(first, chat_line("l1", "a"))
        assert await one.server.batch_jobs.settle(10) == 0  # let go: its file not read
        await redis_proxy.restore()
        clock.advance(HEARTBEAT_S + 1)  # its claim on Redis expires
        assert await two.server.batch_jobs.adopt(two.runtime) == 1
        await settled(two)
        done = await second.batches.retrieve(batch.id)
        assert done.status == "completed" and counts(done) == (1, 1, 0)


class CutsBeforeANewRecord(ResilientStateStore):
    """A replica's store through `proxy`, which it cuts just before a new batch's record
    (`validating`) is written: it is kept on local state (the batch's id said in `cut_at`)."""

    proxy: RedisProxy | None = None
    cut_at = ""

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        new = name.startswith("batch:") and bpb.Batch.FromString(data).status == "validating"
        if self.proxy is not None and new:
            proxy, self.proxy = self.proxy, None
            self.cut_at = bpb.Batch.FromString(data).id
            await proxy.cut()
        return await super().put_document(name, data, ttl_s, only_new=only_new)


async def test_a_batch_refused_as_redis_is_lost_is_nowhere_once_it_answers(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its record kept on local state as its create was answered 503: the replica that
    refused it listed it `validating` (its own state read where Redis lacks it) once Redis
    answered again, its lines kept on Redis for the batch's whole `ttl_s`."""
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one, store = await started_on(CutsBeforeANewRecord, through, clock, start_router)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        store.proxy = redis_proxy  # (uploading its file puts no batch's record)
        with pytest.raises(openai.InternalServerError) as refused:
            await created(first, chat_line("l1", "a"))
        assert refused.value.status_code == 503 and store.cut_at
        assert await one.server.batch_jobs.settle(10) == 0
        await redis_proxy.restore()
        clock.advance(HEARTBEAT_S + 1)  # the claim it took on Redis expires
        for replica in (one, two):
            await replica.server.batch_jobs.adopt(replica.runtime)
            await settled(replica)
        assert [b async for b in first.batches.list()] == []
        assert [b async for b in second.batches.list()] == []
        assert await two.runtime.batches.runs.running() == []
        assert await two.runtime.batches.kept_lines("", store.cut_at) is None
        assert fake.state.count(path="/chat/completions") == 0


async def test_a_batch_whose_kept_lines_read_fell_back_is_not_failed_unlisted(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """Its input file deleted, its kept lines read from local state (where they are not) and
    the store answering again at once: it failed, its line not run unlisted ("not listed in
    an error file"), though its lines were on Redis all along."""
    redis_proxy, through, _ = configs
    through["batches"]["max_running"] = 1
    clock = ManualClock(time.time())
    one, store = await started_on(MissesAFileOnce, through, clock, start_router)
    store.kind = "batch-lines:"
    async with sdks_on(start_edge, one) as (first,):
        fake.state.hold()
        await created(first, chat_line("a", "a"))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
        waiting = await created(first, chat_line("w1", "a"))
        await first.files.delete(waiting.input_file_id)
        store.proxy = redis_proxy
        fake.state.release()  # the first completes; the second starts, its lines read locally
        assert await one.server.batch_jobs.settle(10) == 0
        clock.advance(HEARTBEAT_S + 1)  # a claim let go as the store was cut expires
        for _ in range(2):  # one slot: one batch a round
            await one.server.batch_jobs.adopt(one.runtime)
            await settled(one)
        failed = await first.batches.retrieve(waiting.id)
        assert failed.status == "failed" and counts(failed) == (1, 0, 1) and failed.errors
        assert [e.code for e in failed.errors.data or []] == ["input_file_not_found"]
        assert failed.error_file_id  # its line not run, listed
        (not_run,) = await lines_of(first, failed.error_file_id)
        assert (not_run["custom_id"], not_run["error"]["code"]) == ("w1", "input_file_not_found")
