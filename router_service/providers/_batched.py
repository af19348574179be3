"""Inputs an upstream takes a limited number of per call (embeddings' texts): cut into batches of
at most that many, the calls run a few at once and their answers put back in order.

Each adapter says its own limit (Bedrock's Cohere Embed 96 and Titan 1, the Gemini API's
batchEmbedContents 100, Cohere's /v2/embed 96, Vertex's :predict 250, or 1 for
gemini-embedding-001): one request over it is a 400 for the whole call, which an OpenAI caller
(up to 2,048 inputs a call) would get for a valid request.

Every call is one of the key's: the lease counted the first, the others are counted in its rpm
window before they go and run beside it only in in-flight slots of their own (`CallSlots`),
else a key's rpm and max_in_flight were passed N-fold and the upstream answered 429. The
answers of a failed attempt are kept (`Answered`): a failover to the same model (the same kind
of upstream, the same upstream model: the same batches, the same vectors) sends only the rest,
not again the batches already answered (and billed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from router_service.cancellation import uncut

__all__ = ["EMBED_CONCURRENCY", "Answered", "CallSlots", "batches", "in_order"]

# Calls one embeddings request makes at once.
EMBED_CONCURRENCY = 8
T = TypeVar("T")


class CallSlots(Protocol):
    """The key lease an attempt's calls are made under (`KeyLease`)."""

    async def more_calls(self, calls: int, at_once: int) -> int:
        """Count `calls` more upstream calls; how many of them (at most `at_once`) may run
        beside the lease's own, each in an in-flight slot the key had free."""
        ...

    async def calls_not_made(self, calls: int) -> None:
        """`calls` of those `more_calls` counted were never made (the request failed first)."""
        ...

    async def sends(self, sent: int, of: int) -> None:
        """Only `sent` of the request's `of` calls go under this lease (the others were
        answered under an earlier one, or are left to a later one): its tokens count only
        their share."""
        ...


class Answered:
    """One request's batches answered, by index, across its attempts; kept only while the
    attempts are of one model (`attempt`)."""

    __slots__ = ("answers", "model", "slots")

    def __init__(self) -> None:
        self.answers: dict[int, Any] = {}
        self.model: tuple[str, str] = ("", "")
        self.slots: CallSlots | None = None

    def attempt(self, kind: str, model: str, slots: CallSlots) -> Answered:
        """The answers an attempt of `model` at a `kind` upstream, under `slots`, may reuse."""
        if (kind, model) != self.model:
            self.answers.clear()  # another model's vectors: not to be mixed in
            self.model = (kind, model)
        self.slots = slots
        return self


def batches(
    items: Sequence[T], size: int, *, weigh: Callable[[T], int] | None = None, most: int = 0
) -> list[list[T]]:
    """`items` in order, cut into lists of at most `size`; with `weigh`, also of at most `most`
    weight in all (Vertex's 20,000 tokens a call), an item heavier than that a list alone."""
    if weigh is None:
        return [list(items[i : i + size]) for i in range(0, len(items), size)]
    cut: list[list[T]] = []
    held: list[T] = []
    weight = 0
    for item in items:
        own = weigh(item)
        if held and (len(held) == size or weight + own > most):
            cut.append(held)
            held, weight = [], 0
        held.append(item)
        weight += own
    return [*cut, held] if held else cut


async def in_order(
    calls: Sequence[Callable[[], Awaitable[T]]], limit: int, answered: Answered | None = None
) -> list[T]:
    """The results of `calls`, run at most `limit` at once, in the order given. The first
    failure cancels the calls still running and is raised as it is (not as a group).
    `answered`: the calls an earlier attempt answered are not made again, the others are
    counted on its lease (and run at once only as its key's in-flight slots allow), and their
    answers kept there until all are in."""
    kept: dict[int, Any] = {} if answered is None else answered.answers
    todo = [i for i in range(len(calls)) if i not in kept]
    lease = answered.slots if answered is not None else None
    if lease is not None and kept:  # a failover resuming: the new key is charged its share
        await lease.sends(len(todo), len(calls))
    slots = lease if len(todo) > 1 else None
    if slots is not None:
        limit = 1 + await slots.more_calls(len(todo) - 1, min(limit, len(todo)) - 1)
    gate = asyncio.Semaphore(limit)
    stopped: list[BaseException] = []  # the failure that ends the calls, once there is one
    made = 0  # the calls started

    async def one(i: int) -> None:
        nonlocal made
        async with gate:
            # A call waiting for the gate a failed one gives back is not made: it runs before
            # the group cancels it, and its answer (sent, billed) would be thrown away.
            if stopped:
                return
            made += 1
            try:
                kept[i] = await calls[i]()
            except BaseException as exc:
                stopped.append(exc)
                raise

    try:
        async with asyncio.TaskGroup() as group:
            for i in todo:
                group.create_task(one(i))
    except BaseException as failed:
        if slots is not None and (unmade := len(todo) - max(made, 1)):
            # Counted in the key's rpm before they went, never sent: not the key's calls, nor
            # their tokens (a failover sends them under the next key, which counts them).
            await uncut(slots.calls_not_made(unmade))
            await uncut(slots.sends(max(made, 1), len(calls)))
        if not isinstance(failed, BaseExceptionGroup):
            raise  # the caller's cancellation
        first = failed.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from first.__cause__  # its own cause (a transport error) kept
    results: list[T] = [kept[i] for i in range(len(calls))]
    kept.clear()  # all in: an answer the adapter then finds malformed is not reused
    return results
