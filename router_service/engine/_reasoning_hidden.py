"""OpenRouter's `reasoning.exclude` (and `include_reasoning: false`): the model reasons, the caller
does not see it.

The answer's reasoning (its message's, its stream deltas' `reasoning_content`, `reasoning`,
`reasoning_details`, `thinking_blocks`: `REASONING_KEYS`; the summary of a Responses
upstream's reasoning items) is taken out here, in the router, so
every entrance and gRPC caller gets the answer without it, before the answer's guardrails see it
(nothing of it reaches the caller, so there is nothing of it to screen). The usage keeps its
`reasoning_tokens`: the reasoning was done and billed. A stream chunk that carried only
reasoning is not sent at all; while only such chunks come (a model thinking for minutes), the
caller gets a heartbeat each heartbeat interval (`QuietBeats`), as for a quiet upstream: the
stream it sees is quiet though the upstream is not, and a proxy's idle timeout would cut it.
Whether a request hides it is read once per request, by a substring test of its extras before
any parse (`hides_reasoning`). The Gemini API entrance hides it when the caller did not ask for
thoughts (`includeThoughts`), as Gemini does.

A stream is committed (its route told, failures no longer failed over) by its first chunk the
caller sees: while only hidden reasoning came, a failure still moves to the next candidate, as
before any chunk (`hidden_opening`), up to a heartbeat interval from the attempt's start; then
the stream commits (the chunk then awaited is relayed when it comes), so that the caller is sent its
route, then heartbeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson

from clients.codec._responses_custom import (
    REASONING_ITEMS,
    closes_reasoning,
    reasoning_items_of,
)
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as rs
from router_service.clock import Clock
from router_service.config import TimeoutsConfig
from router_service.engine._stream_guard import is_meaningful
from router_service.errors import UpstreamFailure
from router_service.guardrails._texts import REASONING_KEYS
from router_service.outcomes import Outcome
from router_service.providers._base import UPSTREAM_ALIVE
from router_service.providers._reasoning_object import hides_reasoning

__all__ = [
    "NO_CONTENT",
    "QuietBeats",
    "hidden_opening",
    "hides_reasoning",
    "without_answer_reasoning",
    "without_chunk_reasoning",
]

Chunk = chat_pb2.ChatCompletionChunk
# A stream that ended before the caller was sent anything: a broken attempt like a reset, for
# the next candidate (TRUNCATED, an error event, is for a stream already relayed).
NO_CONTENT = "upstream stream ended before any content"


_HIDDEN_KEYS = (*REASONING_KEYS, REASONING_ITEMS)


def _without(extra_json: str) -> str | None:
    """`extra_json` without the reasoning keys, a Responses upstream's reasoning items without
    their summary (their encrypted content, which no caller can read, kept for the next turn);
    None when it has neither."""
    if not extra_json or not any(key in extra_json for key in _HIDDEN_KEYS):
        return None
    extra: Any = orjson.loads(extra_json)
    if not isinstance(extra, dict) or not any(key in extra for key in _HIDDEN_KEYS):
        return None
    rest = {k: v for k, v in extra.items() if k not in REASONING_KEYS}
    if REASONING_ITEMS in rest:
        items = reasoning_items_of(rest)  # an item's opening (its id alone) stays as it is
        rest[REASONING_ITEMS] = [{**i, "summary": []} if "summary" in i else i for i in items]
    return orjson.dumps(rest).decode() if rest else ""


def without_answer_reasoning(completion: chat_pb2.ChatCompletion) -> None:
    """Take the reasoning out of every choice's message of `completion`."""
    for choice in completion.choices:
        rest = _without(choice.message.extra_json)
        if rest is not None:
            choice.message.extra_json = rest


def without_chunk_reasoning(chunks: list[Chunk]) -> list[Chunk]:
    """`chunks` without their deltas' reasoning; a chunk that carried only reasoning left out."""
    out: list[Chunk] = []
    for chunk in chunks:
        changed = False
        for choice in chunk.choices:
            rest = _without(choice.delta.extra_json)
            if rest is not None:
                choice.delta.extra_json, changed = rest, True
        kept = is_meaningful(chunk) or chunk.HasField("usage")
        if not changed or kept or any(choice.delta.role for choice in chunk.choices):
            out.append(chunk)
    return out


def _shows(chunk: Chunk) -> bool:
    """Whether `chunk` carries something a caller who hides the reasoning sees (a reasoning
    item's opening, its id alone, is not yet that: its end may show its encrypted content)."""
    seen = Chunk()
    seen.CopyFrom(chunk)  # the chunk itself keeps its reasoning (the stops count it)
    for shown in without_chunk_reasoning([seen]):
        for choice in shown.choices:
            choice.delta.extra_json = _without_openings(choice.delta.extra_json)
        if is_meaningful(shown):
            return True
    return False


def _without_openings(extra_json: str) -> str:
    """`extra_json` without the openings of a Responses upstream's reasoning items."""
    if REASONING_ITEMS not in extra_json:
        return extra_json
    extra: Any = orjson.loads(extra_json)
    if not isinstance(extra, dict):
        return extra_json
    ends = [item for item in reasoning_items_of(extra) if closes_reasoning(item)]
    rest = {k: v for k, v in extra.items() if k != REASONING_ITEMS}
    rest |= {REASONING_ITEMS: ends} if ends else {}
    return orjson.dumps(rest).decode() if rest else ""


async def hidden_opening(
    chunks: AsyncIterator[Chunk],
    opening: list[Chunk],
    stack: AsyncExitStack,
    clock: Clock,
    timeouts: TimeoutsConfig,
    until: float,
) -> AsyncIterator[Chunk]:
    """Read on past a stream's `opening` while it shows a caller who hides the reasoning
    nothing, each chunk within the `stall_s` of `timeouts`, until a chunk it shows or `clock`
    reads `until` at most; the chunks to relay after the opening (`chunks`, or a chunk still
    awaited and then them). A failure meanwhile (the upstream's error, a stall, an end without
    an answer) is raised, as before the opening: nothing reached the caller, the next candidate
    may answer. A read still awaited at the commit is stopped by `stack` (the attempt's, which
    closes the upstream call after it), should the relay never come to read it: a caller who
    left as it was sent the route."""
    if any(_shows(chunk) for chunk in opening):
        return chunks
    stall_s = timeouts.stall_s
    while True:
        pending = asyncio.ensure_future(_next(chunks))
        timer = asyncio.ensure_future(clock.wait(until - clock.monotonic()))
        try:
            async with clock.timeout(stall_s):  # the silence timed on the router's clock
                done, _ = await asyncio.wait({pending, timer}, return_when=_FIRST)
        except TimeoutError:
            done = set()
        except BaseException:  # the caller left: no read left running
            await _stop(pending)
            raise
        finally:
            timer.cancel()
        if pending in done:
            chunk = pending.result()
            if chunk is None:
                raise UpstreamFailure(Outcome.UPSTREAM_ERROR, NO_CONTENT)
            if chunk is UPSTREAM_ALIVE:  # at work: its stall window starts again
                continue
            opening.append(chunk)
            if _shows(chunk):
                return chunks
        elif timer in done:  # thinking for an interval: the stream commits, the read goes on
            stack.push_async_callback(_stop, pending)  # before the call it reads is closed
            return _resumed(pending, chunks)
        else:
            await _stop(pending)
            raise UpstreamFailure(Outcome.STALLED, f"no chunk within {stall_s:g}s")


_FIRST = asyncio.FIRST_COMPLETED


async def _stop(pending: asyncio.Future[Chunk | None]) -> None:
    """Cancel a read not yet done, and let it end (before the upstream call is closed); its
    failure, when no one awaited it, is retrieved (no "exception never retrieved")."""
    if not pending.done():
        pending.cancel()
        await asyncio.wait({pending})
    if not pending.cancelled():
        pending.exception()


async def _next(chunks: AsyncIterator[Chunk]) -> Chunk | None:
    return await anext(chunks, None)


async def _resumed(
    pending: asyncio.Future[Chunk | None], rest: AsyncIterator[Chunk]
) -> AsyncIterator[Chunk]:
    """The chunk `pending` reads, then the rest of `rest`; closed, it stops the read."""
    try:
        chunk = await pending
        if chunk is not None:
            yield chunk
            async for chunk in rest:
                yield chunk
    finally:
        await _stop(pending)
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


class QuietBeats:
    """The heartbeats of a stream whose reasoning is hidden: one each `every_s` the caller was
    sent nothing while the upstream sent only reasoning (the guard beats only for a quiet
    upstream)."""

    def __init__(self, clock: Clock, every_s: float) -> None:
        self._clock, self._every_s = clock, every_s
        self._last = clock.monotonic()

    def after(self, seen: list[Chunk]) -> rs.Heartbeat | None:
        """After a batch of which the caller is sent `seen`: a heartbeat when that is nothing
        and the caller has been sent nothing for the interval, else None."""
        now = self._clock.monotonic()
        if seen:
            self._last = now
            return None
        return self._beat(now) if now - self._last >= self._every_s else None

    @staticmethod
    def of_silence(quiet: QuietBeats | None, idle_s: float) -> rs.Heartbeat:
        """The heartbeat for the guard's `idle_s` of upstream silence. Hidden (`quiet`): the
        guard counts from the last batch, which the caller may not have been sent, and the next
        quiet beat must count from this one: the time since the caller's last message."""
        if quiet is None:
            return rs.Heartbeat(idle_ms=int(idle_s * 1000))
        return quiet._beat(quiet._clock.monotonic())

    def _beat(self, now: float) -> rs.Heartbeat:
        idle, self._last = now - self._last, now
        return rs.Heartbeat(idle_ms=int(idle * 1000))
