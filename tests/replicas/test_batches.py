"""A batch created through one router replica is read and cancelled through another: its file,
its record, end mark and heartbeat live on the shared Redis; the replica running it reads its
batches' cancel marks every second and stops their lines. (A replica that stops hands its
batches over: test_batch_handover.py.)"""

from __future__ import annotations

import openai
import orjson

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_batches_sdk import chat_line, counts, jsonl
from tests.replicas.harness import Replicas


async def started(fake: FakeUpstream, sdk: openai.AsyncOpenAI) -> str:
    """A batch of three lines started through `sdk`, all three held upstream."""
    fake.state.hold()
    content = jsonl(chat_line("one", "a"), chat_line("two", "a"), chat_line("three", "a"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.held == 3, what="the lines upstream")
    return batch.id


async def test_a_batch_run_by_one_replica_is_read_and_cancelled_on_another(
    fake: FakeUpstream, replicas: Replicas
) -> None:
    one, two, first, second = replicas
    batch_id = await started(fake, first)
    (uploaded,) = [f async for f in second.files.list()]  # the file, from the other replica
    assert uploaded.filename == "in.jsonl"
    assert orjson.loads((await second.files.content(uploaded.id)).content.splitlines()[0])
    running = await second.batches.retrieve(batch_id)
    assert running.status == "in_progress" and counts(running) == (3, 0, 0)
    cancelling = await second.batches.cancel(batch_id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    assert (await first.batches.retrieve(batch_id)).status == "cancelling"
    # Replica one reads the mark within its check and stops the lines upstream.
    assert await one.server.batch_jobs.settle(10) == 0
    fake.state.release()
    await fake.state.wait_idle()
    cancelled = await second.batches.retrieve(batch_id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    assert fake.state.count(path="/chat/completions") == 3  # no line ran again
    assert await one.leases_held() == 0 and await two.leases_held() == 0
    assert [b.id async for b in second.batches.list()] == [batch_id]
