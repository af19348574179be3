"""The AdminService's batches on a replica cut off from Redis: the batches running on the others
are not in its local state, so a batch not found there may run elsewhere. CancelClientBatch is
UNAVAILABLE (try again), never NOT_FOUND (`switchboard admin cancel-batch` would exit 4 and a
script take the runaway batch for ended); ListJobs says it does not know them
(`batches_unknown`), never that none runs."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batch_endings_sdk import created
from tests.e2e.test_batches_sdk import chat_line
from tests.replicas.harness import sdks_on
from tests.replicas.test_batch_outage import Configs, configs
from tests.router_service.admin_cli.shell import Shell, key_file

__all__ = ["configs"]  # the fixture, shared

pytestmark = pytest.mark.timeout(60)


async def test_an_admin_cancel_on_a_replica_without_redis_is_unavailable_not_not_found(
    fake: FakeUpstream, configs: Configs, start_router: StartRouter, start_edge: StartEdge
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, two) as (second,):
        fake.state.hold()
        batch = await created(second, chat_line("l1", "a"))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="its line upstream")
        await redis_proxy.cut()
        cancel = admin_pb.CancelClientBatchRequest(id=batch.id, reason="runaway")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await one.admin.CancelClientBatch(cancel)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE, refused.value.details()
        await redis_proxy.restore()
        answer = await one.admin.CancelClientBatch(cancel)  # Redis back: asked, it takes
        assert answer.batch.status in ("cancelling", "cancelled")
        fake.state.release()


async def test_jobs_on_a_replica_without_redis_say_its_batches_are_unknown_not_none(
    fake: FakeUpstream,
    configs: Configs,
    start_router: StartRouter,
    start_edge: StartEdge,
    tmp_path: Path,
) -> None:
    redis_proxy, through, direct = configs
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    two = await start_router(direct, clock=clock)
    async with sdks_on(start_edge, two) as (second,):
        fake.state.hold()
        await created(second, chat_line("l1", "a"))
        await fake.state.wait_for(lambda: fake.state.held == 1, what="its line upstream")
        await redis_proxy.cut()
        listed = await one.admin.ListJobs(admin_pb.ListJobsRequest())
        shown = await Shell(one, clock, key_file(tmp_path))("jobs", key=[])
        await redis_proxy.restore()
        fake.state.release()
    assert listed.batches_unknown and list(listed.batches) == []
    assert shown.code == 0
    assert "no batches running" not in shown.out
    assert shown.out.startswith("batches unknown: this replica cannot reach the state store")
