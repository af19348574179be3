"""A batch whose runner began to end it (its end mark written: a cancel is refused from then on)
and then lost the store is ended where it is taken over as that runner was ending it: no line
runs there, as none would have. Two replicas on one Redis and one clock: replica one has had a
reload that removed the batch's client (replica two not yet), so it ends the batch
`client_not_found`; Redis fails as its output file takes its place in the client's index."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from clients import RouterClient, RouterError
from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from router_service.sessions import client_document
from router_service.state import AppendResult, PutResult, ResilientStateStore, open_store
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.helpers import metric_values
from tests.replicas.harness import batch_through, replica_config
from tests.replicas.redis_fixtures import RedisProxy
from tests.router_service.auth.helpers import client

KEY = "sk-batch-client"
OTHER = client("other", "sk-other")


class LosesTheFileIndex(ResilientStateStore):
    """Replica one's store on the test Redis (as `open_store` makes it), whose next append to a
    client's file index fails once `armed`, as a lost Redis fails it (there is no local stand-in
    for a document of the shared store): the batch's output file, as its end is written."""

    armed = False

    async def append_document(self, name: str, data: bytes, *, max_bytes: int) -> AppendResult:
        if self.armed and name.startswith("file-index:"):
            self.armed = False
            raise StoreUnavailableError("Redis is unavailable.")
        return await super().append_document(name, data, max_bytes=max_bytes)


class CutsAfterTheEndMark(ResilientStateStore):
    """Replica one's store through `proxy`, which it cuts (Redis lost, for real: the store
    falls back to local state) once a batch's end mark is written there."""

    proxy: RedisProxy | None = None

    async def put_document(
        self, name: str, data: bytes, ttl_s: float, *, only_new: bool = False
    ) -> PutResult:
        kept = await super().put_document(name, data, ttl_s, only_new=only_new)
        if self.proxy is not None and name.startswith("batch-end:"):
            proxy, self.proxy = self.proxy, None
            await proxy.cut()
        return kept


def _config(fake_url: str, redis_url: str, prefix: str, *clients: Any) -> SwitchboardConfig:
    config = replica_config(
        fake_url, redis_url, prefix, batches={"concurrency": 1}, auth={"clients": list(clients)}
    )
    return SwitchboardConfig.model_validate(config)


async def test_a_batch_its_runner_began_to_end_ends_so_where_taken_over_running_no_line(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _config(fake.base_url, redis_url, redis_prefix, client("c", KEY), OTHER)
    clock = ManualClock(time.time())
    opened = await open_store(config.state, clock)
    assert isinstance(opened, ResilientStateStore)
    store = LosesTheFileIndex(opened.shared, opened.local, clock=clock, name=opened.name)
    one = await start_router(config, clock=clock, store=store)
    two = await start_router(config, clock=clock)
    fake.state.hold()
    content = jsonl(chat_line("l1", "a"), chat_line("l2", "a"), chat_line("l3", "a"))
    batch_id = await batch_through(one, content, KEY)
    await fake.state.wait_for(lambda: fake.state.held == 1, what="line one upstream")
    await one.server.reload(_config(fake.base_url, redis_url, redis_prefix, OTHER))
    store.armed = True
    fake.state.release()  # line one answers; the next finds its client gone: the batch ends
    assert await one.server.batch_jobs.settle(10) == 0
    assert not store.armed and "its end was not written" in caplog.text  # let go
    # Its runner began to end it: a cancel is refused, on any replica (as on its own).
    async with RouterClient(two.server.address, api_key=KEY) as calls:
        with pytest.raises(RouterError, match="Cannot cancel a batch with status 'finalizing'"):
            await calls.cancel_batch(bpb.CancelBatchRequest(id=batch_id), timeout=10)
    assert await two.server.batch_jobs.adopt(two.runtime) == 1  # its client is configured here
    assert await two.server.batch_jobs.settle(10) == 0
    assert fake.state.count(path="/chat/completions") == 1  # no line ran where it was taken over
    ended = await two.runtime.batches.get("c", batch_id)
    assert ended.status == "failed" and [e.code for e in ended.errors] == ["client_not_found"]
    counts = ended.request_counts
    assert (counts.total, counts.completed, counts.failed) == (3, 1, 2)
    output = await two.runtime.files.content("c", ended.output_file_id)
    assert [orjson.loads(line)["custom_id"] for line in output.content.splitlines()] == ["l1"]
    errors = await two.runtime.files.content("c", ended.error_file_id)
    assert [
        (line["custom_id"], line["error"]["code"])
        for line in map(orjson.loads, errors.content.splitlines())
    ] == [("l2", "client_not_found"), ("l3", "client_not_found")]
    assert await two.runtime.batches.runs.running() == []


async def test_a_batch_whose_runner_loses_redis_after_its_end_mark_is_not_ended_on_local_state(
    redis_proxy: RedisProxy,  # first: it outlives the routers (they stop through it)
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    through = _config(fake.base_url, redis_proxy.url, redis_prefix, client("c", KEY))
    clock = ManualClock(time.time())
    opened = await open_store(through.state, clock, reply_clock=clock)
    assert isinstance(opened, ResilientStateStore)
    store = CutsAfterTheEndMark(opened.shared, opened.local, clock=clock, name=opened.name)
    with TelemetryCapture(tracing=False) as captured:
        one = await start_router(through, clock=clock, store=store)
        direct = _config(fake.base_url, redis_url, redis_prefix, client("c", KEY))
        two = await start_router(direct, clock=clock)
        fake.state.hold()
        batch_id = await batch_through(one, jsonl(chat_line("l1", "a"), chat_line("l2", "a")), KEY)
        await fake.state.wait_for(lambda: fake.state.held == 1, what="line one upstream")
        store.proxy = redis_proxy
        fake.state.release()  # both lines answer; Redis is lost once its end mark is written
        assert await one.server.batch_jobs.settle(10) == 0
        assert "its end was not written" in caplog.text  # let go, not ended on local state
        assert metric_values(captured, "switchboard.batches.ended") == {}
        # Its answers are on Redis: replica one does not say it completed with none (its
        # state is unknown there during the outage, and none completed is on its local state).
        with pytest.raises(StoreUnavailableError):
            await one.runtime.batches.get("c", batch_id)
        (kept,) = await store.local.get_documents([client_document("batch", "c", batch_id)])
        assert kept is None or bpb.Batch.FromString(kept).status != "completed"
        await redis_proxy.restore()
        clock.advance(through.batches.heartbeat_s + 1)  # its claim on Redis expires
        assert await two.server.batch_jobs.adopt(two.runtime) == 1
        assert await two.server.batch_jobs.settle(10) == 0
        ended = metric_values(captured, "switchboard.batches.ended")
    assert ended == {(("status", "completed"),): 1}  # once, where its end was written
    done = await two.runtime.batches.get("c", batch_id)
    assert done.status == "completed" and done.request_counts.completed == 2
    output = await two.runtime.files.content("c", done.output_file_id)
    assert [orjson.loads(line)["custom_id"] for line in output.content.splitlines()] == [
        "l1",
        "l2",
    ]
    assert fake.state.count(path="/chat/completions") == 2  # no line ran twice
