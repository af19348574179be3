"""A config reload reaches the batches under way: each line that starts after it runs on the
reloaded config (its providers' keys, its client's entry), as a call starting then would; the
line in flight ends on the config it began with. A client the reload removed fails its batch
(`client_not_found`), as where a batch is taken over."""

from __future__ import annotations

from typing import Any

from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.router_service.auth.helpers import bearer, client, guarded_config

KEY = "sk-batch-client"
ONE_AT_A_TIME = {"concurrency": 1}


async def _held_batch(
    fake: FakeUpstream, router: RouterHandle, metadata: Any = (), *, waits: bool = False
) -> bpb.Batch:
    """A batch of two lines, its first held upstream (`waits`: the batch waits for a slot, its
    lines not sent)."""
    fake.state.hold()
    content = jsonl(chat_line("first"), chat_line("second"))
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=content)
    kept = await router.stub.UploadFile(upload, metadata=metadata)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    made: bpb.CreateBatchResponse = await router.stub.CreateBatch(create, metadata=metadata)
    if not waits:
        await fake.state.wait_for(lambda: fake.state.held == 1, what="the first line upstream")
    return made.batch


async def test_lines_after_a_reload_use_the_reloaded_keys(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(base_config(fake.base_url, batches=ONE_AT_A_TIME))
    batch = await _held_batch(fake, router)
    # A key rotated out (leaked, say): no call that starts from now on may use it.
    reloaded = base_config(fake.base_url, batches=ONE_AT_A_TIME)
    reloaded["providers"]["alpha"]["keys"] = ["sk-alpha-new"]
    await router.server.reload(SwitchboardConfig.model_validate(reloaded))
    fake.state.release()
    assert await router.server.batch_jobs.settle(10) == 0
    first, second = fake.state.calls(path="/chat/completions")
    assert first.key.startswith("sk-alpha-") and first.key != "sk-alpha-new"
    assert second.key == "sk-alpha-new"
    done = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch.id))
    assert done.batch.status == "completed" and done.batch.request_counts.completed == 2


async def test_a_client_removed_by_a_reload_fails_its_batch(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    other = client("other", "sk-other")
    config = guarded_config(fake.base_url, client("c", KEY), other, batches=ONE_AT_A_TIME)
    router = await start_router(config)
    batch = await _held_batch(fake, router, bearer(KEY))
    reloaded = guarded_config(fake.base_url, other, batches=ONE_AT_A_TIME)
    await router.server.reload(SwitchboardConfig.model_validate(reloaded))
    fake.state.release()
    assert await router.server.batch_jobs.settle(10) == 0
    assert fake.state.count(path="/chat/completions") == 1  # the second line never went up
    found = await router.server.runtime.batches.get("c", batch.id)
    assert found.status == "failed" and [e.code for e in found.errors] == ["client_not_found"]
    assert found.request_counts.completed == 1 and found.output_file_id  # what it answered


async def test_a_reload_that_raises_max_running_starts_a_waiting_batch(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    one = {"concurrency": 1, "max_running": 1}
    router = await start_router(base_config(fake.base_url, batches=one))
    await _held_batch(fake, router)
    await _held_batch(fake, router, waits=True)  # no slot for it: validating
    two = base_config(fake.base_url, batches={**one, "max_running": 2})
    await router.server.reload(SwitchboardConfig.model_validate(two))
    await fake.state.wait_for(lambda: fake.state.held == 2, what="the second batch's first line")
    fake.state.release()
    assert await router.server.batch_jobs.settle(10) == 0
