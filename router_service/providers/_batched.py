"""Inputs an upstream takes a limited number of per call (embeddings' texts): cut into batches of
at most that many, the calls run a few at once and their answers put back in order.

Each adapter says its own limit (Bedrock's Cohere Embed 96 and Titan 1, the Gemini API's
batchEmbedContents 100, Cohere's /v2/embed 96, Vertex's :predict 250, or 1 for
gemini-embedding-001): one request over it is a 400 for the whole call, which an OpenAI caller
(up to 2,048 inputs a call) would get for a valid request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["EMBED_CONCURRENCY", "batches", "in_order"]

# Calls one embeddings request makes at once.
EMBED_CONCURRENCY = 8
T = TypeVar("T")


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


async def in_order(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """The results of `calls`, run at most `limit` at once, in the order given. The first
    failure cancels the calls still running and is raised as it is (not as a group)."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(call)) for call in calls]
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from first.__cause__  # its own cause (a transport error) kept
    return [task.result() for task in tasks]
