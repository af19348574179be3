"""Small test utilities shared across the suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# How often `eventually` re-checks its condition; the deadline, not this, bounds the wait.
POLL_INTERVAL_S = 0.005


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 5.0, what: str = "condition"
) -> None:
    """Wait until an async condition holds, failing after `within` seconds. For effects of
    another task (a lease released after a cancellation) that have no event of their own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {within}s")
        await asyncio.sleep(POLL_INTERVAL_S)
