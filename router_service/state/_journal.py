"""Journal: the writes a shared store must not miss, queued while it is unreachable and replayed
in order when it answers again (ResilientStateStore). One the store answers with an error (a
wrong type, out of memory) had its answer: dropped with a warning, the others replayed on."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

from router_service.clock import Clock
from router_service.errors import StoreUnavailableError

log = logging.getLogger("switchboard.state")

Write = Callable[[], Awaitable[object]]

# Queued writes kept at most: the oldest is dropped first (a lease the shared store never hears
# released still frees itself by its TTL).
JOURNAL_MAX = 10_000


class Journal:
    def __init__(self, max_writes: int = JOURNAL_MAX, *, name: str = "shared state") -> None:
        self._writes: deque[tuple[str, Write]] = deque()
        self._max = max_writes
        self._name = name
        self.dropped = 0  # writes dropped to stay bounded, since the last `replay` emptied it

    def __len__(self) -> int:
        return len(self._writes)

    def add(self, kind: str, write: Write) -> None:
        """`kind`: what the write does ("release"), all a warning says of it."""
        if len(self._writes) >= self._max:
            self._writes.popleft()
            self.dropped += 1
        self._writes.append((kind, write))

    async def replay(self) -> int:
        """Run the queued writes, oldest first, each removed once it is done (one that raises
        stays first, for the next replay, unless the store refused it); also those queued while
        it runs. How many ran."""
        replayed = 0
        while self._writes:
            kind, write = self._writes[0]
            try:
                await write()
                replayed += 1
            except StoreUnavailableError as exc:
                if exc.refused is None:  # unreachable: tried again by the next replay
                    raise
                # Its answer: the same again would be refused again, and hold every write behind.
                log.warning(
                    "%s refused a queued %s (%s): dropped, not tried again",
                    self._name,
                    kind,
                    exc.refused,
                )
            self._writes.popleft()
        return replayed


def expiring(clock: Clock, ttl_s: float, write: Callable[[float], Awaitable[object]]) -> Write:
    """`write` of something that lives `ttl_s` from now (a value), given what is left of it when
    it runs: replayed late, it still ends when it would have, and is not written once over."""
    until = clock.now() + ttl_s

    async def run() -> None:
        if (left := until - clock.now()) > 0:
            await write(left)

    return run
