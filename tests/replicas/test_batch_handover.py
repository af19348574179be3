"""Batches survive their replica: two routers on one Redis and one clock. A replica that stops
gracefully lets its batch go and the other takes it over (`adopt`, run here when the test says,
as each replica's own round would), running only the lines not answered: every line once in the
output, the one that was in flight asked upstream again. A crashed replica's claim expires with
its heartbeat (the clock moved, not waited for); of two replicas racing for an orphan, one runs
it; a batch cancelled while nobody runs it ends cancelled where it is taken over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import orjson
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.batches import Answered, LineResult
from router_service.clock import ManualClock
from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, counts, jsonl, lines_of
from tests.helpers import eventually, metric_values
from tests.replicas.harness import batch_through, replica_config, sdks_on, two_replicas
from tests.replicas.redis_fixtures import RedisProxy

HEARTBEAT_S = 30.0
Pair = tuple[RouterHandle, RouterHandle, openai.AsyncOpenAI, openai.AsyncOpenAI, ManualClock]


@pytest.fixture
async def pair(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    redis_url: str,
    redis_prefix: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Pair]:
    """Two replicas running one line of a batch at a time, each behind an edge with an SDK
    (an indirect parameter: more `batches` settings)."""
    batches = {"concurrency": 1, "heartbeat_s": HEARTBEAT_S, **getattr(request, "param", {})}
    config = replica_config(fake.base_url, redis_url, redis_prefix, batches=batches)
    clock = ManualClock(time.time())
    one, two = await two_replicas(start_router, config, clock)
    async with sdks_on(start_edge, one, two) as (first, second):
        yield one, two, first, second, clock


async def handed_over(fake: FakeUpstream, pair: Pair) -> str:
    """A batch of four lines started on replica one, stopped gracefully once two lines are
    answered and the third is upstream (it never answers): its batch id."""
    one, _, first, _, _ = pair
    fake.state.set_scenario(Scenario(stall_before_first_byte=True), text="l3")
    lines = [chat_line("l1", "a"), chat_line("l2", "a"), chat_line("l3", "a", text="l3")]
    content = jsonl(*lines, chat_line("l4", "a"))
    uploaded = await first.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await first.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.count(text="l3") == 1, what="line 3 up")
    await one.server.shutdown(grace=0)
    fake.state.remove_scenario(text="l3")
    return batch.id


async def test_a_batch_whose_replica_stops_is_finished_by_the_other_each_line_once(
    fake: FakeUpstream, pair: Pair
) -> None:
    _, two, _, second, _ = pair
    with TelemetryCapture(tracing=False) as captured:
        batch_id = await handed_over(fake, pair)
        waiting = await second.batches.retrieve(batch_id)
        assert waiting.status == "in_progress" and counts(waiting) == (4, 2, 0)
        # An operator on the other replica sees it (Redis), held by nobody until taken over.
        (listed,) = (await two.admin.ListJobs(admin_pb.ListJobsRequest())).batches
        assert (listed.id, listed.completed, listed.replica) == (batch_id, 2, "")
        await two.server.batch_jobs.adopt(two.runtime)  # (or its own round did)
        await settled(two)
        ended = metric_values(captured, "switchboard.batches.ended")
        assert metric_values(captured, "switchboard.batches.running") == {(): 0}
        assert metric_values(captured, "switchboard.batches.lines") == {
            (("outcome", "completed"),): 4
        }
    assert ended == {(("status", "completed"),): 1}  # where it ended: not where it was stopped
    done = await second.batches.retrieve(batch_id)
    assert done.status == "completed" and counts(done) == (4, 4, 0) and done.output_file_id
    answers = await lines_of(second, done.output_file_id)
    assert [a["custom_id"] for a in answers] == ["l1", "l2", "l3", "l4"]
    # Line 3 was in flight when replica one stopped: asked again (at least once upstream).
    assert fake.state.count(text="l3") == 2 and fake.state.count(text="hi") == 3
    assert await two.runtime.batches.runs.running() == []


async def test_a_batch_taken_over_expires_on_the_routers_clock_each_line_once(
    fake: FakeUpstream, pair: Pair
) -> None:
    _, two, _, second, clock = pair
    batch_id = await handed_over(fake, pair)
    fake.state.set_scenario(Scenario(stall_before_first_byte=True), text="l3")
    await two.server.batch_jobs.adopt(two.runtime)
    await fake.state.wait_for(lambda: fake.state.count(text="l3") == 2, what="l3 again")
    clock.advance(86400 + 1)  # its window ends as line 3 is upstream on replica two
    await settled(two)
    done = await second.batches.retrieve(batch_id)
    assert done.status == "expired" and counts(done) == (4, 2, 2) and done.output_file_id
    assert [a["custom_id"] for a in await lines_of(second, done.output_file_id)] == ["l1", "l2"]
    assert done.error_file_id
    errors = await lines_of(second, done.error_file_id)
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("l3", "batch_expired"),
        ("l4", "batch_expired"),
    ]
    assert fake.state.count(text="hi") == 2  # line 4 never ran
    assert await two.runtime.batches.runs.running() == []


async def test_a_batch_cancelled_while_nobody_runs_it_ends_cancelled_when_taken_over(
    fake: FakeUpstream, pair: Pair
) -> None:
    _, two, _, second, _ = pair
    batch_id = await handed_over(fake, pair)
    cancelling = await second.batches.cancel(batch_id)
    assert cancelling.status == "cancelling"
    await two.server.batch_jobs.adopt(two.runtime)
    await settled(two)
    cancelled = await second.batches.retrieve(batch_id)
    assert cancelled.status == "cancelled" and counts(cancelled) == (4, 2, 2)
    assert cancelled.output_file_id and cancelled.error_file_id
    answers = await lines_of(second, cancelled.output_file_id)
    assert [a["custom_id"] for a in answers] == ["l1", "l2"]
    not_run = await lines_of(second, cancelled.error_file_id)
    assert [(e["custom_id"], e["error"]["code"]) for e in not_run] == [
        ("l3", "batch_cancelled"),
        ("l4", "batch_cancelled"),
    ]
    assert fake.state.count(text="l3") == 1  # nothing ran after the cancel


async def orphan(replica: RouterHandle, sdk: openai.AsyncOpenAI, *, owner: str = "") -> str:
    """What a crashed replica leaves: a batch of three lines in progress, its first line
    answered, claimed by `owner` (no claim: "") who never renews it. Its id."""
    content = jsonl(chat_line("one", "a"), chat_line("two", "a"), chat_line("three", "a"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    now = int(replica.runtime.clock.now())
    batch = bpb.Batch(
        id="batch_orphan",
        endpoint="/v1/chat/completions",
        input_file_id=uploaded.id,
        status="in_progress",
        created_at=now,
        expires_at=now + 86400,
        request_counts=bpb.BatchRequestCounts(total=3),
    )
    records = replica.runtime.batches
    if owner:
        assert await records.runs.claim(("", batch.id), owner) is not None
    await records.begin("", batch)
    answered = {"status_code": 200, "request_id": "req_dead", "body": {"object": "chat.completion"}}
    output = {"id": "batch_req_dead", "custom_id": "one", "response": answered, "error": None}
    await records.answers.writer("", batch.id, Answered()).add(LineResult(1, output, True))
    return batch.id


async def adopt_on_both(one: RouterHandle, two: RouterHandle) -> None:
    """A round of take-over on each replica at once (each waits for its own periodic round,
    should one be under way): what either took is running when this returns."""
    jobs = one.server.batch_jobs, two.server.batch_jobs
    await asyncio.gather(jobs[0].adopt(one.runtime), jobs[1].adopt(two.runtime))


async def settled(*replicas: RouterHandle) -> None:
    for replica in replicas:
        assert await replica.server.batch_jobs.settle(10) == 0


async def completed(sdk: openai.AsyncOpenAI, batch_id: str) -> list[dict[str, Any]]:
    """The batch, completed with every line answered: its output file's lines."""
    done = await sdk.batches.retrieve(batch_id)
    assert done.status == "completed" and done.output_file_id and done.request_counts
    assert done.request_counts.completed == done.request_counts.total
    return await lines_of(sdk, done.output_file_id)


async def test_a_crashed_replicas_batch_is_taken_over_once_its_heartbeat_expired(
    fake: FakeUpstream, pair: Pair
) -> None:
    one, two, first, second, clock = pair
    batch_id = await orphan(one, first, owner="crashed-replica")
    assert await two.server.batch_jobs.adopt(two.runtime) == 0  # its claim is live still
    assert (await second.batches.retrieve(batch_id)).status == "in_progress"
    clock.advance(HEARTBEAT_S + 1)
    await adopt_on_both(one, two)  # (the crashed one was a third replica)
    await settled(one, two)
    answers = await completed(second, batch_id)
    assert [a["custom_id"] for a in answers] == ["one", "two", "three"]
    assert answers[0]["id"] == "batch_req_dead"  # answered before the crash: not run again
    assert fake.state.count(path="/chat/completions") == 2


async def test_of_two_replicas_racing_for_an_orphan_one_runs_it(
    fake: FakeUpstream, pair: Pair
) -> None:
    one, two, first, second, _ = pair
    batch_id = await orphan(one, first)
    fake.state.hold()
    await adopt_on_both(one, two)
    assert one.server.batch_jobs.running + two.server.batch_jobs.running == 1
    await fake.state.wait_for(lambda: fake.state.held == 1, what="line two upstream")
    fake.state.release()
    await settled(one, two)
    answers = await completed(second, batch_id)
    assert [a["custom_id"] for a in answers] == ["one", "two", "three"]
    assert fake.state.count(path="/chat/completions") == 2


async def test_a_batch_whose_input_file_went_fails_where_it_is_taken_over(
    fake: FakeUpstream, pair: Pair
) -> None:
    one, two, first, second, _ = pair
    batch_id = await orphan(one, first)
    (uploaded,) = [f async for f in first.files.list()]
    await first.files.delete(uploaded.id)
    await adopt_on_both(one, two)
    await settled(one, two)
    failed = await second.batches.retrieve(batch_id)
    assert failed.status == "failed" and failed.errors is not None and failed.output_file_id
    assert counts(failed) == (3, 1, 2) and not failed.error_file_id
    # Its lines were not kept as it began (made here by hand): those not run cannot be listed.
    assert [(e.code, e.message) for e in failed.errors.data or []] == [
        (
            "input_file_not_found",
            "The batch's input file was deleted before it ran. Its 2 lines not answered are "
            "counted failed but not listed in an error file: their custom_ids were in the "
            "input file alone.",
        )
    ]
    assert [a["custom_id"] for a in await lines_of(second, failed.output_file_id)] == ["one"]
    assert fake.state.count(path="/chat/completions") == 0


async def test_a_runner_whose_claim_another_took_stops_writing_nothing(
    fake: FakeUpstream, pair: Pair
) -> None:
    one, _, first, second, clock = pair
    fake.state.hold()
    uploaded = await first.files.create(
        file=("in.jsonl", jsonl(chat_line("x", "a"))), purpose="batch"
    )
    batch = await first.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the line upstream")
    # As if replica one had paused past its heartbeat and another replica took the batch.
    (job,) = one.server.batch_jobs._jobs.values()
    runs = one.runtime.batches.runs
    await runs.release(job.key, job.claim)
    assert await runs.claim(job.key, "another-replica") is not None
    clock.advance(HEARTBEAT_S / 3)  # replica one's next renewal is due: refused
    await settled(one)
    await fake.state.wait_for(lambda: fake.state.in_flight == 0, what="the line aborted")
    fake.state.release()
    running = await second.batches.retrieve(batch.id)
    assert running.status == "in_progress" and counts(running) == (1, 0, 0)


async def test_a_replica_that_loses_redis_mid_batch_lets_another_finish_it(
    redis_proxy: RedisProxy,  # first: it outlives the routers (they stop through it)
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    batches = {"concurrency": 1, "heartbeat_s": HEARTBEAT_S}
    through = replica_config(fake.base_url, redis_proxy.url, redis_prefix, batches=batches)
    # The cut aborts the proxy's connections and refuses new ones: the replica learns of it at
    # once, with no timeout to wait out (the config's are hang guards).
    clock = ManualClock(time.time())
    one = await start_router(through, clock=clock)
    direct = replica_config(fake.base_url, redis_url, redis_prefix, batches=batches)
    two = await start_router(direct, clock=clock)
    fake.state.hold()
    batch_id = await batch_through(one, jsonl(chat_line("one", "a"), chat_line("two", "a")))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="line one upstream")
    await redis_proxy.cut()
    fake.state.release()  # line one answers; Redis cannot keep its answer: replica one lets go
    assert await one.server.batch_jobs.settle(10) == 0
    assert "answers not kept" in caplog.text  # said, not a task's traceback
    await redis_proxy.restore()
    clock.advance(HEARTBEAT_S + 1)  # its claim on Redis expires
    await two.server.batch_jobs.adopt(two.runtime)
    await settled(two)
    done = await two.runtime.batches.get("", batch_id)
    assert done.status == "completed" and done.request_counts.completed == 2
    output = await two.runtime.files.content("", done.output_file_id)
    assert [orjson.loads(line)["custom_id"] for line in output.content.splitlines()] == [
        "one",
        "two",
    ]
    assert fake.state.count(path="/chat/completions") == 3  # line one asked again


async def test_a_batch_whose_input_file_cannot_be_read_as_it_starts_is_handed_over(
    fake: FakeUpstream, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two, first, second, _ = pair
    batch_id = await orphan(one, first)

    async def unreadable(*args: Any) -> None:
        raise StoreUnavailableError("Redis is unavailable.")

    monkeypatch.setattr(one.runtime.files, "content", unreadable)
    assert await one.server.batch_jobs.adopt(one.runtime) == 1
    task = one.server.batch_jobs._jobs[("", batch_id)].task
    assert task is not None
    await settled(one)
    assert task.exception() is None  # it let the batch go (no task dying on the store's error)
    assert (await second.batches.retrieve(batch_id)).status == "in_progress"
    assert await two.server.batch_jobs.adopt(two.runtime) == 1
    await settled(two)
    assert [a["custom_id"] for a in await completed(second, batch_id)] == ["one", "two", "three"]


def failing_once(
    monkeypatch: pytest.MonkeyPatch, replica: RouterHandle, when: Callable[[bpb.Batch], bool]
) -> list[asyncio.Task[Any]]:
    """Replica's next write of a batch that `when` picks fails as a lost Redis fails it; the
    task that made it (the batch's runner), once it has."""
    records, failed = replica.runtime.batches, list[asyncio.Task[Any]]()
    write = records.write

    async def flaky(client: str, batch: bpb.Batch) -> None:
        if not failed and when(batch):
            runner = asyncio.current_task()
            assert runner is not None
            failed.append(runner)
            raise StoreUnavailableError("Redis is unavailable.")
        await write(client, batch)

    monkeypatch.setattr(records, "write", flaky)
    return failed


async def test_a_lost_write_of_a_batchs_counts_does_not_kill_its_runner(
    fake: FakeUpstream, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, _, first, second, _ = pair
    batch_id = await orphan(one, first)
    failing_once(monkeypatch, one, lambda b: b.request_counts.completed == 2)
    assert await one.server.batch_jobs.adopt(one.runtime) == 1
    task = one.server.batch_jobs._jobs[("", batch_id)].task
    assert task is not None
    await settled(one)
    assert task.exception() is None  # said in the log, not a task dying on the store's error
    assert [a["custom_id"] for a in await completed(second, batch_id)] == ["one", "two", "three"]


async def test_a_batch_whose_start_is_not_written_is_handed_over(
    fake: FakeUpstream, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two, first, second, _ = pair
    runners = failing_once(monkeypatch, one, lambda b: b.status == "in_progress")
    uploaded = await first.files.create(
        file=("in.jsonl", jsonl(chat_line("x", "a"))), purpose="batch"
    )
    batch = await first.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    async def failed() -> bool:  # (it may have ended, and left the jobs, before the answer)
        return bool(runners)

    await eventually(failed, what="the batch's start written")
    (runner,) = runners
    async with asyncio.timeout(10):
        await asyncio.wait([runner])
    assert runner.exception() is None
    assert await two.server.batch_jobs.adopt(two.runtime) == 1
    await settled(two)
    assert [a["custom_id"] for a in await completed(second, batch.id)] == ["x"]
