"""A batch whose input file is gone (deleted, or expired) before a replica taking it over reads
it: its lines not run are still listed in its error file (`input_file_not_found`, by
`custom_id`, in the input's order), its counts agreeing with its files; one taken over while
still `validating` never reads `in_progress` (it did not validate there)."""

from __future__ import annotations

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_batch_endings_sdk import created
from tests.e2e.test_batches_sdk import chat_line, counts, lines_of
from tests.replicas.test_batch_handover import Pair, handed_over, pair, settled

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
    assert fake.state.count(text="l3") == 1  # l3 not asked again
    assert await two.runtime.batches.kept_lines("", batch_id) is None  # cleared as it ended


@pytest.mark.parametrize("pair", [{"max_running": 1}], indirect=True)  # one slot each
async def test_a_validating_batch_taken_over_without_its_input_fails_never_in_progress(
    fake: FakeUpstream, pair: Pair
) -> None:
    one, two, first, second, _ = pair
    fake.state.hold()
    await created(first, chat_line("a", "a"))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first batch's line up")
    waiting = await created(first, chat_line("w1", "a"), chat_line("w2", "a"), chat_line("w3", "a"))
    await one.server.shutdown(grace=0)  # both let go; the second never had a slot
    fake.state.release()
    assert (await second.batches.retrieve(waiting.id)).status == "validating"
    await second.files.delete(waiting.input_file_id)
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
