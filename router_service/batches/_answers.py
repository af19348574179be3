"""BatchAnswers: a batch's answered lines in the state store, written as they come, so that its
runner holds only the lines in flight and another replica can take the batch over (it runs only
the lines not answered here: `answered`).

Each answer is one JSON line (`[number, ok, input_tokens, output_tokens, output]`), followed
when it read cached or spent reasoning tokens by a second (`[number, "tokens", cached_tokens,
reasoning_tokens]`: an older version skips it, as it skips any row not of five fields), appended to
the batch's current **page**, a document of at most PAGE_BYTES (`StateStore.append_document`:
one atomic step); a full page is followed by the next (`…:0`, `…:1`, …, consecutive). A page is
read whole, a few at a time (`answered`), when a runner takes the batch over and when it writes
the batch's output and error files at its end; then the pages are deleted (`forget`). Should two
replicas both answer one line (the one that lost the batch had it in flight), the first page's
answer is the line's: each line is in the output once.

Bounded: a batch's pages hold at most `max_bytes` (past it: `AnswersNotKeptError`, the batch
ends `output_not_kept`, as when its output file would be larger than `files.max_file_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from router_service.batches._errors import FileTooLargeError
from router_service.sessions import client_document
from router_service.state import AppendResult, PutResult, StateStore

__all__ = ["PAGE_BYTES", "Answered", "AnswersNotKeptError", "BatchAnswers", "LineResult"]

PAGE_BYTES = 256 * 1024  # a page's size, past which the next page is begun
_TOKENS = "tokens"  # a row of an answer's cached and reasoning tokens
_READ_AHEAD = 8  # pages read in one call


@dataclass(frozen=True, slots=True)
class LineResult:
    """What one line of a batch answered."""

    number: int  # the input line
    output: dict[str, Any]  # its output- or error-file line
    ok: bool
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of its input tokens, read from a prompt cache
    reasoning_tokens: int = 0  # of its output tokens, spent reasoning


@dataclass(slots=True)
class Answered:
    """A batch's answers as its pages hold them: each line once (the first answer kept), in
    the order they were written."""

    results: list[LineResult] = field(default_factory=list)
    pages: int = 0  # how many pages there are (the next one to begin)
    size: int = 0  # their bytes

    @property
    def numbers(self) -> set[int]:
        return {result.number for result in self.results}


class AnswersNotKeptError(FileTooLargeError):
    """A batch's answers outgrew what it may keep (or the memory store's room)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="output_not_kept")


class BatchAnswers:
    def __init__(self, store: StateStore, *, ttl_s: float, max_bytes: int) -> None:
        self._store = store
        self._ttl_s = ttl_s  # a page's lifetime: its batch's (deleted once written out)
        self.max_bytes = max_bytes

    def writer(self, client: str, batch_id: str, answered: Answered) -> AnswerWriter:
        """Where a runner writes the batch's answers after `answered` (a new page first)."""
        return AnswerWriter(self, client, batch_id, answered.pages, answered.size)

    async def answered(self, client: str, batch_id: str) -> Answered:
        """The batch's answers so far, each line once."""
        found = Answered()
        seen: set[int] = set()
        while True:
            names = [_page(client, batch_id, found.pages + i) for i in range(_READ_AHEAD)]
            for data in await self._store.get_documents(names):
                if data is None:
                    return found
                found.pages += 1
                found.size += len(data)
                for result in _parsed(data):
                    if result.number not in seen:
                        seen.add(result.number)
                        found.results.append(result)

    async def forget(self, client: str, batch_id: str, pages: int) -> None:
        """Delete the batch's pages (its files are written): in one call of the store (on Redis
        a command for many pages, not a round trip each)."""
        if pages:
            await self._store.delete_documents([_page(client, batch_id, n) for n in range(pages)])

    async def _add(self, name: str, data: bytes) -> bool:
        """Append `data` to page `name` (begun if need be); False when the page is full."""
        for _ in range(2):  # absent: begun, unless another replica began it meanwhile
            added = await self._store.append_document(name, data, max_bytes=PAGE_BYTES)
            if added is not AppendResult.MISSING:
                return added is AppendResult.APPENDED
            kept = await self._store.put_document(name, data, self._ttl_s, only_new=True)
            if kept is PutResult.KEPT:
                return True
            if kept is PutResult.TOO_LARGE:
                raise AnswersNotKeptError("The router has no room to keep the batch's answers.")
        return False


class AnswerWriter:
    """A runner's writes of one batch's answers: appended to its current page, the next one
    begun when that one is full."""

    def __init__(
        self, answers: BatchAnswers, client: str, batch_id: str, page: int, size: int
    ) -> None:
        self._answers = answers
        self._client = client
        self._batch_id = batch_id
        self._page = page
        self.size = size

    async def add(self, result: LineResult) -> None:
        """Keep `result` (AnswersNotKeptError past the batch's bound)."""
        data = _framed(result)
        if self.size + len(data) > self._answers.max_bytes:
            raise AnswersNotKeptError(
                f"The batch's answers are larger than {self._answers.max_bytes} bytes "
                "(twice files.max_file_bytes)."
            )
        # Its own count, not the writer's: workers finding a page full at once all go on to the
        # next one (none skips it, which would end the pages there for a reader).
        page = self._page
        while not await self._answers._add(_page(self._client, self._batch_id, page), data):
            page += 1  # full: the next (one answer larger than a page fills one alone)
        self._page = max(self._page, page)
        self.size += len(data)


def _page(client: str, batch_id: str, number: int) -> str:
    return f"{client_document('batch-page', client, batch_id)}:{number}"


def _framed(result: LineResult) -> bytes:
    row = [result.number, result.ok, result.input_tokens, result.output_tokens, result.output]
    data = orjson.dumps(row) + b"\n"
    if result.cached_tokens or result.reasoning_tokens:  # one append: never apart from its row
        details = [result.number, _TOKENS, result.cached_tokens, result.reasoning_tokens]
        data += orjson.dumps(details) + b"\n"
    return data


def _parsed(data: bytes) -> list[LineResult]:
    results: list[LineResult] = []
    for raw in data.splitlines():
        try:
            row = orjson.loads(raw)
            if len(row) == 4 and row[1] == _TOKENS:  # the details of the answer just before
                if results and results[-1].number == row[0]:
                    cached, reasoning = int(row[2]), int(row[3])
                    results[-1] = replace(
                        results[-1], cached_tokens=cached, reasoning_tokens=reasoning
                    )
                continue
            number, ok, input_tokens, output_tokens, output = row
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
            continue  # not ours (a foreign writer under the prefix): as good as absent
        results.append(LineResult(number, output, bool(ok), input_tokens, output_tokens))
    return results
