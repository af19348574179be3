"""Journal: the writes a shared store must not miss, queued while it is unreachable and replayed
in order when it answers again (ResilientStateStore)."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

from router_service.clock import Clock

Write = Callable[[], Awaitable[object]]

# Queued writes kept at most: the oldest is dropped first (a lease the shared store never hears
# released still frees itself by its TTL).
JOURNAL_MAX = 10_000


class Journal:
    def __init__(self, max_writes: int = JOURNAL_MAX) -> None:
        self._writes: deque[Write] = deque()
        self._max = max_writes
        self.dropped = 0  # writes dropped to stay bounded, since the last `replay` emptied it

    def __len__(self) -> int:
        return len(self._writes)

    def add(self, write: Write) -> None:
        if len(self._writes) >= self._max:
            self._writes.popleft()
            self.dropped += 1
        self._writes.append(write)

    async def replay(self) -> int:
        """Run the queued writes, oldest first, each removed once it is done (one that raises
        stays first, for the next replay); also those queued while it runs. How many ran."""
        replayed = 0
        while self._writes:
            await self._writes[0]()
            self._writes.popleft()
            replayed += 1
        return replayed


def expiring(clock: Clock, ttl_s: float, write: Callable[[float], Awaitable[object]]) -> Write:
    """`write` of something that lives `ttl_s` from now (a value), given what is left of it when
    it runs: replayed late, it still ends when it would have, and is not written once over."""
    until = clock.now() + ttl_s

    async def run() -> None:
        if (left := until - clock.now()) > 0:
            await write(left)

    return run
