"""A batch whose input file is gone (deleted, or expired) before a replica taking it over reads
it: its lines not run are still listed in its error file (`input_file_not_found`, by
`custom_id`, in the input's order), its counts agreeing with its files; one taken over while
still `validating` never reads `in_progress` (it did not validate there)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import openai
import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, counts, jsonl, lines_of
from tests.replicas.harness import replica_config, two_replicas
from tests.replicas.test_batch_handover import HEARTBEAT_S, Pair, handed_over, pair, settled

__all__ = ["pair"]  # the fixture, used here

GONE = (
    "The batch failed before this request executed: "
    "The batch's input file was deleted before it ran."
)


async def test_a_batch_taken_over_without_its_input_lists_its_lines_not_run(
    fake: FakeUpstream, pair: Pair
) -> None:
    _, two, _, second, _ = pair
    batch_id = await handed_over(fake, pair)  # l1 and l2 answered, l3 was in flight
    (uploaded,) = [f async for f in second.files.list(purpose="batch")]
    await second.files.delete(uploaded.id)
    assert await two.server.batch_jobs.adopt(two.runtime) == 1
    await settled(two)
    failed = await second.batches.retrieve(batch_id)
    assert failed.status == "failed" and counts(failed) == (4, 2, 2)
    assert failed.errors is not None and failed.output_file_id and failed.error_file_id
    assert [e.code for e in failed.errors.data or []] == ["input_file_not_found"]
    answers = await lines_of(second, failed.output_file_id)
    assert [a["custom_id"] for a in answers] == ["l1", "l2"]
    not_run = await lines_of(second, failed.error_file_id)
    assert [(e["custom_id"], e["response"], e["error"]) for e in not_run] == [
        ("l3", None, {"code": "input_file_not_found", "message": GONE}),
        ("l4", None, {"code": "input_file_not_found", "message": GONE}),
    ]
    assert fake.state.count(model="model-b") == 1  # l3 not asked again
    assert await two.runtime.batches.kept_lines("", batch_id) is None  # cleared as it ended


@pytest.fixture
async def one_slot(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[Pair]:
    """Two replicas running one batch at a time each, each behind an edge with an SDK."""
    batches = {"concurrency": 1, "max_running": 1, "heartbeat_s": HEARTBEAT_S}
    config = replica_config(fake.base_url, redis_url, redis_prefix, batches=batches)
    clock = ManualClock(time.time())
    one, two = await two_replicas(start_router, config, clock)
    sdks = []
    for replica in (one, two):
        url = f"{(await start_edge(replica)).base_url}/v1"
        sdks.append(openai.AsyncOpenAI(base_url=url, api_key="sk-x", max_retries=0, timeout=10))
    yield one, two, sdks[0], sdks[1], clock
    for sdk in sdks:
        await sdk.close()


async def test_a_validating_batch_taken_over_without_its_input_fails_never_in_progress(
    fake: FakeUpstream, one_slot: Pair
) -> None:
    one, two, first, second, _ = one_slot
    fake.state.hold()
    running = await first.files.create(
        file=("a.jsonl", jsonl(chat_line("a", "a"))), purpose="batch"
    )
    await first.batches.create(
        input_file_id=running.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
    content = jsonl(chat_line("w1", "a"), chat_line("w2", "a"), chat_line("w3", "a"))
    waits = await first.files.create(file=("w.jsonl", content), purpose="batch")
    waiting = await first.batches.create(
        input_file_id=waits.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await one.server.shutdown(grace=0)  # both let go; the second never had a slot
    fake.state.release()
    assert (await second.batches.retrieve(waiting.id)).status == "validating"
    await second.files.delete(waits.id)
    await two.server.batch_jobs.adopt(two.runtime)  # one slot: one batch a round
    await settled(two)
    await two.server.batch_jobs.adopt(two.runtime)
    await settled(two)
    failed = await second.batches.retrieve(waiting.id)
    assert failed.status == "failed" and counts(failed) == (3, 0, 3)
    assert failed.in_progress_at is None  # it never validated where it was taken over
    assert failed.error_file_id and not failed.output_file_id
    not_run = await lines_of(second, failed.error_file_id)
    assert [(e["custom_id"], e["error"]["code"]) for e in not_run] == [
        ("w1", "input_file_not_found"),
        ("w2", "input_file_not_found"),
        ("w3", "input_file_not_found"),
    ]
    assert fake.state.count(path="/chat/completions") == 2  # the first batch's line, twice
