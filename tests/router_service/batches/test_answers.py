"""A batch's answers in the state store (memory and Redis side by side): appended as they come
to pages of at most PAGE_BYTES, read back each line once (the first answer kept, as when two
replicas both ran a line), a runner that takes over begins a page of its own, and the answers
are bounded (the batch's own bound, the memory store's room)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest

from router_service.batches import (
    PAGE_BYTES,
    Answered,
    AnswersNotKeptError,
    BatchAnswers,
    LineResult,
)
from router_service.clock import ManualClock
from router_service.sessions import client_document
from router_service.state import MemoryStateStore
from tests.router_service.state.stores import MakeStore

BIG = PAGE_BYTES // 3  # three answers of this size fill more than a page: two a page


def answer(number: int, text: str = "x", size: int = BIG) -> LineResult:
    output = {"custom_id": f"c{number}", "text": text, "padding": "p" * size}
    return LineResult(number, output, ok=number % 2 == 1, input_tokens=number, output_tokens=1)


async def test_answers_are_paged_read_back_once_each_and_forgotten(make_store: MakeStore) -> None:
    answers = BatchAnswers(make_store(ManualClock()), ttl_s=3600, max_bytes=10 * PAGE_BYTES)
    writer = answers.writer("client", "batch_1", Answered())
    for number in (2, 1, 3, 4, 5):  # in the order they answered
        await writer.add(answer(number))
    found = await answers.answered("client", "batch_1")
    assert [r.number for r in found.results] == [2, 1, 3, 4, 5] and found.pages == 3
    assert found.results[1] == answer(1) and found.size == writer.size
    # Another replica takes over: its answers go to a page of its own; line 5 answered twice
    # (it was in flight on the replica that stopped) is the first answer's.
    resumed = answers.writer("client", "batch_1", found)
    await resumed.add(answer(5, text="again", size=10))
    await resumed.add(answer(6, size=10))
    again = await answers.answered("client", "batch_1")
    assert again.numbers == {1, 2, 3, 4, 5, 6} and again.pages == 4
    assert [r.output["text"] for r in again.results if r.number == 5] == ["x"]
    assert (await answers.answered("client", "other_batch")).results == []
    await answers.forget("client", "batch_1", again.pages)
    assert await answers.answered("client", "batch_1") == Answered()


async def test_a_batchs_pages_are_forgotten_in_one_call_of_the_store(
    make_store: MakeStore,
) -> None:
    # `delete_documents`: on Redis one UNLINK for many pages, not a round trip per page.
    store = make_store(ManualClock())
    answers = BatchAnswers(store, ttl_s=3600, max_bytes=10 * PAGE_BYTES)
    writer = answers.writer("client", "batch_1", Answered())
    for number in range(1, 6):
        await writer.add(answer(number))
    pages = (await answers.answered("client", "batch_1")).pages
    calls: list[list[str]] = []
    delete_documents = store.delete_documents

    async def counted(names: Sequence[str]) -> None:
        calls.append(list(names))
        await delete_documents(names)

    store.delete_documents = counted  # type: ignore[method-assign]
    await answers.forget("client", "batch_1", pages)
    assert calls == [
        [f"{client_document('batch-page', 'client', 'batch_1')}:{n}" for n in range(3)]
    ]
    assert await answers.answered("client", "batch_1") == Answered()


async def test_answers_past_the_batchs_bound_are_not_kept(make_store: MakeStore) -> None:
    answers = BatchAnswers(make_store(ManualClock()), ttl_s=3600, max_bytes=2 * BIG + 200)
    writer = answers.writer("client", "batch_1", Answered())
    await writer.add(answer(1))
    await writer.add(answer(2))
    with pytest.raises(AnswersNotKeptError, match="larger than"):
        await writer.add(answer(3))
    assert (await answers.answered("client", "batch_1")).numbers == {1, 2}


async def test_answers_the_memory_store_has_no_room_for_are_not_kept() -> None:
    store = MemoryStateStore(ManualClock(), document_bytes=BIG // 2)
    answers = BatchAnswers(store, ttl_s=3600, max_bytes=10 * PAGE_BYTES)
    with pytest.raises(AnswersNotKeptError, match="no room"):
        await answers.writer("client", "batch_1", Answered()).add(answer(1))


async def test_answers_written_at_once_past_a_page_are_all_kept(make_store: MakeStore) -> None:
    # A batch's lines answer together (batches.concurrency): several find a page full at once.
    answers = BatchAnswers(make_store(ManualClock()), ttl_s=3600, max_bytes=10 * PAGE_BYTES)
    writer = answers.writer("client", "batch_1", Answered())
    await asyncio.gather(*(writer.add(answer(number)) for number in range(1, 9)))
    found = await answers.answered("client", "batch_1")
    assert found.numbers == set(range(1, 9)) and found.pages == 4


async def test_answers_keep_cached_and_reasoning_tokens_and_read_an_older_versions_page(
    make_store: MakeStore,
) -> None:
    store = make_store(ManualClock())
    answers = BatchAnswers(store, ttl_s=3600, max_bytes=10 * PAGE_BYTES)
    # A page an older version wrote (a rolling deploy): its answers end at their output.
    older = orjson.dumps([1, True, 4, 2, {"custom_id": "c1"}]) + b"\n"
    await store.put_document(f"{client_document('batch-page', 'client', 'b')}:0", older, 60)
    found = await answers.answered("client", "b")
    assert found.results == [LineResult(1, {"custom_id": "c1"}, True, 4, 2)]
    line = LineResult(2, {"custom_id": "c2"}, True, 9, 5, cached_tokens=3, reasoning_tokens=1)
    await answers.writer("client", "b", found).add(line)
    assert (await answers.answered("client", "b")).results[1] == line


async def test_an_older_version_reads_every_answer_this_version_wrote(
    make_store: MakeStore,
) -> None:
    # A rolling deploy: an older replica taking the batch over reads this version's page as it
    # reads its own (five fields a row, any other row skipped); no answered line is lost (and
    # run, and billed, again).
    store = make_store(ManualClock())
    answers = BatchAnswers(store, ttl_s=3600, max_bytes=10 * PAGE_BYTES)
    writer = answers.writer("client", "b", await answers.answered("client", "b"))
    await writer.add(LineResult(1, {"custom_id": "c1"}, True, 9, 5, 3, 1))
    await writer.add(LineResult(2, {"custom_id": "c2"}, True, 4, 2))
    (page,) = await store.get_documents([f"{client_document('batch-page', 'client', 'b')}:0"])
    assert page is not None
    older: list[int] = []
    for raw in page.splitlines():
        try:
            number, _ok, _input, _output, _out = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            continue
        older.append(number)
    assert older == [1, 2]
    found = await answers.answered("client", "b")
    assert [(r.cached_tokens, r.reasoning_tokens) for r in found.results] == [(3, 1), (0, 0)]
