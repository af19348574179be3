"""A batch's completion window, kept on the router's clock (a ManualClock here, moved by the
test): a batch still waiting for one of the replica's `batches.max_running` slots when its
window ends is `expired` then, not `validating` until a slot frees, its lines in its error
file as not run."""

from __future__ import annotations

import time

import openai

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_batches_sdk import Open, chat_line, counts, jsonl, lines_of, open_batches
from tests.helpers import eventually

__all__ = ["open_batches"]  # the fixture, used here

WINDOW_S = 3600.0


async def created(sdk: openai.AsyncOpenAI, *custom_ids: str) -> str:
    content = jsonl(*(chat_line(custom_id) for custom_id in custom_ids))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return batch.id


async def test_a_batch_waiting_for_a_slot_expires_when_its_window_ends(
    fake: FakeUpstream, open_batches: Open
) -> None:
    clock = ManualClock(time.time())
    batches = {"max_running": 1, "concurrency": 1, "completion_window_s": WINDOW_S}
    router, sdk, _ = await open_batches(clock=clock, batches=batches)
    fake.state.hold()
    running = await created(sdk, "first")
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
    waiting = await created(sdk, "w1", "w2")
    assert (await sdk.batches.retrieve(waiting)).status == "validating"
    clock.advance(WINDOW_S + 1)

    async def expired() -> bool:
        return (await sdk.batches.retrieve(waiting)).status == "expired"

    await eventually(expired, what="the waiting batch expired")
    done = await sdk.batches.retrieve(waiting)
    assert done.expired_at and counts(done) == (2, 0, 2) and done.output_file_id is None
    assert done.error_file_id
    errors = await lines_of(sdk, done.error_file_id)
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("w1", "batch_expired"),
        ("w2", "batch_expired"),
    ]
    fake.state.release()
    await router.server.batch_jobs.settle(10)
    assert fake.state.count(path="/chat/completions") == 1  # the waiting batch's never ran
    assert (await sdk.batches.retrieve(running)).status in ("completed", "expired")


async def test_a_running_batch_expires_when_its_window_ends_on_the_routers_clock(
    fake: FakeUpstream, open_batches: Open
) -> None:
    clock = ManualClock(time.time())
    batches = {"max_running": 1, "concurrency": 1, "completion_window_s": WINDOW_S}
    router, sdk, _ = await open_batches(clock=clock, batches=batches)
    fake.state.set_scenario(Scenario(stall_before_first_byte=True), text="two")
    content = jsonl(chat_line("one"), chat_line("two", text="two"), chat_line("three"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.count(text="two") == 1, what="two up")
    clock.advance(WINDOW_S + 1)
    assert await router.server.batch_jobs.settle(10) == 0  # its lines stopped, its claim let go
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "expired" and done.expired_at and counts(done) == (3, 1, 2)
    assert done.output_file_id and done.error_file_id
    assert [a["custom_id"] for a in await lines_of(sdk, done.output_file_id)] == ["one"]
    errors = await lines_of(sdk, done.error_file_id)
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("two", "batch_expired"),
        ("three", "batch_expired"),
    ]
    assert fake.state.count(path="/chat/completions") == 2  # "two" once, "three" never
    after = await created(sdk, "after")  # its slot was given back: the next one runs
    assert await router.server.batch_jobs.settle(10) == 0
    assert (await sdk.batches.retrieve(after)).status == "completed"


async def test_a_batch_cancelled_while_waiting_for_a_slot_lists_its_lines_cancelled(
    fake: FakeUpstream, open_batches: Open
) -> None:
    batches = {"max_running": 1, "concurrency": 1}
    router, sdk, _ = await open_batches(batches=batches)
    fake.state.hold()
    running = await created(sdk, "first")
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
    waiting = await created(sdk, "w1", "w2")
    cancelled = await sdk.batches.cancel(waiting)
    assert cancelled.status == "cancelled" and counts(cancelled) == (2, 0, 2)
    assert cancelled.error_file_id and cancelled.output_file_id is None
    errors = await lines_of(sdk, cancelled.error_file_id)
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("w1", "batch_cancelled"),
        ("w2", "batch_cancelled"),
    ]
    fake.state.release()
    assert await router.server.batch_jobs.settle(10) == 0
    assert (await sdk.batches.retrieve(running)).status == "completed"
    assert fake.state.count(path="/chat/completions") == 1  # the cancelled batch's never ran
