"""A file's `expires_after` (the SDK's `client.files.create(..., expires_after=...)`): kept for
that long after it is made (at most `files.ttl_s`), gone after; a policy OpenAI would refuse is
a 400 naming its field."""

from __future__ import annotations

import time

import openai
import pytest
from openai.types.file_create_params import ExpiresAfter

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_batches_sdk import Open, chat_line, counts, jsonl, lines_of, open_batches

__all__ = ["open_batches"]  # the fixture, used here

HOUR_S = 3600


async def test_a_file_expires_after_what_its_upload_asked(open_batches: Open) -> None:
    clock = ManualClock(time.time())
    _, sdk, _ = await open_batches(clock=clock)
    asked: ExpiresAfter = {"anchor": "created_at", "seconds": HOUR_S}
    short = await sdk.files.create(file=("a.txt", b"x"), purpose="user_data", expires_after=asked)
    default = await sdk.files.create(file=("b.txt", b"y"), purpose="user_data")
    assert short.expires_at == short.created_at + HOUR_S
    assert default.expires_at and default.expires_at > short.created_at + 29 * 24 * HOUR_S
    assert (await sdk.files.retrieve(short.id)).expires_at == short.expires_at
    clock.advance(HOUR_S + 1)
    with pytest.raises(openai.NotFoundError):
        await sdk.files.content(short.id)
    assert [f.id async for f in sdk.files.list()] == [default.id]


async def test_an_expiry_policy_openai_refuses_is_a_400_naming_its_field(
    open_batches: Open,
) -> None:
    _, sdk, _ = await open_batches()
    for policy, field in [
        ({"anchor": "created_at", "seconds": 60}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 31 * 24 * HOUR_S}, "expires_after.seconds"),
        ({"anchor": "last_active_at", "seconds": HOUR_S}, "expires_after.anchor"),
        ({"anchor": "created_at"}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 0}, "expires_after.seconds"),
        ({"anchor": "created_at", "seconds": 10**40}, "expires_after.seconds"),
    ]:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.files.create(
                file=("a.txt", b"x"),
                purpose="user_data",
                expires_after=policy,  # type: ignore[arg-type]
            )
        assert refused.value.param == field, policy


async def test_a_batchs_output_files_expire_after_what_its_create_asked(
    fake: FakeUpstream, open_batches: Open
) -> None:
    router, sdk, _ = await open_batches()
    fake.state.set_scenario(Scenario(status=400), text="no")
    content = jsonl(chat_line("ok"), chat_line("no", text="no"))
    uploaded = await sdk.files.create(file=("in.jsonl", content), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 2 * HOUR_S},
    )
    assert await router.server.batch_jobs.settle(10) == 0
    done = await sdk.batches.retrieve(batch.id)
    assert done.output_file_id and done.error_file_id
    for file_id in (done.output_file_id, done.error_file_id):
        kept = await sdk.files.retrieve(file_id)
        assert kept.expires_at == kept.created_at + 2 * HOUR_S
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            output_expires_after={"anchor": "created_at", "seconds": 10},
        )
    assert refused.value.param == "output_expires_after.seconds"


async def test_a_batch_whose_input_file_expired_before_it_ran_says_so(
    fake: FakeUpstream, open_batches: Open
) -> None:
    clock = ManualClock(time.time())
    router, sdk, _ = await open_batches(clock=clock, batches={"max_running": 1})
    fake.state.hold()
    first = await sdk.files.create(file=("a.jsonl", jsonl(chat_line("a"))), purpose="batch")
    await sdk.batches.create(
        input_file_id=first.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
    asked: ExpiresAfter = {"anchor": "created_at", "seconds": HOUR_S}
    short = await sdk.files.create(
        file=("b.jsonl", jsonl(chat_line("b"))), purpose="batch", expires_after=asked
    )
    waiting = await sdk.batches.create(
        input_file_id=short.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    clock.advance(HOUR_S + 1)  # its input expires as it waits for the slot
    fake.state.release()
    assert await router.server.batch_jobs.settle(10) == 0
    failed = await sdk.batches.retrieve(waiting.id)
    assert failed.status == "failed" and failed.errors is not None
    assert [(e.code, e.message) for e in failed.errors.data or []] == [
        ("input_file_not_found", "The batch's input file expired before it ran.")
    ]
    assert failed.in_progress_at is None  # it never validated: no slot before its file went
    assert counts(failed) == (1, 0, 1) and failed.error_file_id  # its line listed, not run
    (not_run,) = await lines_of(sdk, failed.error_file_id)
    assert (not_run["custom_id"], not_run["response"], not_run["error"]["code"]) == (
        "b",
        None,
        "input_file_not_found",
    )
    assert fake.state.count(path="/chat/completions") == 1  # its line never ran
