"""SharedOrLocal: which side of a ResilientStateStore answers a call (the shared store while it
answers, the local one in an outage), the outage's bookkeeping and the way back: probes, the
queued writes' replay and the rejoin (see `_resilient.py`'s docstring)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from router_service.cancellation import uncut
from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.state._base import StateStore, StoreUnavailableError
from router_service.state._journal import Journal, Write
from router_service.state._memory import MemoryStateStore
from router_service.state._resilient_documents import _DOWN, _Down

__all__ = ["SharedOrLocal"]

log = logging.getLogger("switchboard.state")

T = TypeVar("T")


class SharedOrLocal:
    """A shared store and this replica's local one, and which of them answers now."""

    def __init__(
        self,
        shared: StateStore,
        local: MemoryStateStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry_interval_s: float = 1.0,
        name: str = "shared state",
    ) -> None:
        self.shared = shared
        self.local = local
        self.name = name
        self.batches_concurrent_calls = shared.batches_concurrent_calls
        self._clock = clock
        self._retry_interval_s = retry_interval_s
        self.degraded = False
        self.fallback_count = 0
        self.outages = 0
        self.last_error = ""
        self._down_since = 0.0
        self._retry_at = 0.0
        self._probing = False
        self._journal = Journal(name=name)

    def detail(self) -> str:
        """One line for a readiness probe or an admin page."""
        if not self.degraded:
            return f"{self.name}: ok"
        down_s = self._clock.monotonic() - self._down_since
        return (
            f"{self.name}: unreachable for {down_s:.0f}s ({self.last_error}); "
            f"serving from local state, {len(self._journal)} writes queued"
        )

    def mark_down(self, exc: StoreUnavailableError) -> None:
        """Enter (or stay in) local mode after a failure of the shared store."""
        now = self._clock.monotonic()
        self._retry_at = now + self._retry_interval_s
        self.last_error = str(exc)
        if not self.degraded:
            self.degraded = True
            self.outages += 1
            self._down_since = now
            log.warning(
                "%s unreachable (%s): requests go on with this replica's local state; "
                "trying again every %.1fs",
                self.name,
                exc,
                self._retry_interval_s,
            )

    async def _try_shared(
        self, op: Callable[[], Awaitable[T]], undo: Callable[[T], Write | None] | None = None
    ) -> T | _Down:
        """`op` on the shared store, or `_DOWN`. `undo`: for a granting op, what gives back what
        it granted (None: nothing granted), run if the caller is cancelled before it has it."""
        probe = False
        if self.degraded:
            if self._probing or self._clock.monotonic() < self._retry_at:
                self.fallback_count += 1
                return _DOWN
            probe = self._probing = True
        try:
            replayed = await self._journal.replay() if probe else 0
            result = await op()
            if probe:
                await self._rejoined(replayed, undo and undo(result))
        except StoreUnavailableError as exc:
            self.mark_down(exc)
            self.fallback_count += 1
            if exc.undo is not None:  # it may have happened there: taken back when it answers
                self._journal.add("undo", exc.undo)
            return _DOWN
        finally:
            if probe:
                self._probing = False
        return result

    async def _rejoined(self, replayed: int, undo: Write | None) -> None:
        """`_rejoin`, after the probe's own op was granted something: a caller cancelled while
        the rejoin waits never has it, so it is given back first (`uncut`: to its end, whatever
        more cancels), not left to its TTL on the shared store (a key held on every replica)."""
        try:
            await self._rejoin(replayed)
        except asyncio.CancelledError:
            if undo is not None:
                await uncut(self._give_back(undo))
            raise

    async def _give_back(self, undo: Write) -> None:
        try:
            await undo()
        except StoreUnavailableError as exc:  # lost again: given back once it answers
            self.mark_down(exc)
            self._journal.add("undo", undo)

    async def _rejoin(self, replayed: int) -> None:
        """Back on shared state once what other calls queued while the probe was out is replayed
        too (left, nothing replays it before the next outage: a lost release holds its key
        until the lease's TTL); no suspension between the queue found empty and `_back`."""
        try:
            replayed += await self._journal.replay()
        except StoreUnavailableError as exc:
            # Lost again: the probe's own result stands; the next probe replays the rest.
            self.mark_down(exc)
            return
        self._back(replayed)

    def _back(self, replayed: int) -> None:
        self.degraded = False
        log.warning(
            "%s reachable again after %.1fs: back on shared state (%d queued writes replayed, "
            "%d dropped)",
            self.name,
            self._clock.monotonic() - self._down_since,
            replayed,
            self._journal.dropped,
        )
        self._journal.dropped = 0

    async def _write(self, kind: str, op: Callable[[], Awaitable[object]]) -> None:
        """A write the shared store must see eventually: now, or replayed when it is back."""
        if isinstance(await self._try_shared(op), _Down):
            self._journal.add(kind, op)

    @property
    def journal_dropped(self) -> int:
        """Queued writes dropped (the journal is bounded) in the current outage."""
        return self._journal.dropped
