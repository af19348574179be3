"""Flights: identical requests that miss the cache together make one upstream call.

Without them, N callers asking the same question at once (a burst of one embedding, a page
load fanned out) all miss, and all N go upstream before the first answer is kept. Here the
first miss of a name leads: the misses that follow on this replica while it runs wait for its
answer and are served it as a HIT. A leader that fails, or whose caller leaves, lands with
nothing: each follower then asks upstream itself. A follower that leaves, or whose own
deadline passes (DEADLINE_EXCEEDED: a leader with none may take longer), stops waiting; the
leader goes on. By default replicas do not wait for each other (a cross-replica lease puts a
round trip on every miss): each replica makes at most one call per name at a time. With
`cache.coalesce: cluster` a leader here is also a flight's leader or follower across the
replicas (`_cluster.py`); the followers here still never touch the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import Clock
from router_service.errors import DeadlineExceededError

__all__ = ["Flight", "Flights"]


class Flight:
    """The leader's side: `land` hands its answer to the followers."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[pb.CachedAnswer | None]) -> None:
        self._future = future

    def land(self, answer: pb.CachedAnswer) -> None:
        if not self._future.done():
            self._future.set_result(answer)


class Flights:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock  # a follower's deadline is timed on the router's clock
        self._open: dict[str, asyncio.Future[pb.CachedAnswer | None]] = {}
        self.following = 0  # followers waiting now (tests see who arrived while it flies)

    @property
    def open(self) -> int:
        """Flights under way (tests, and a leak would show here)."""
        return len(self._open)

    async def follow(self, name: str, deadline_s: float | None) -> pb.CachedAnswer | None:
        """The answer of the flight under way for `name`, None when there is none or it
        landed with nothing. Not the followers' to share: copy what is changed. Waited for
        `deadline_s` at most (what the follower's deadline leaves; None: none), then
        DeadlineExceededError: the leader's call may have no deadline, or a longer one."""
        future = self._open.get(name)
        if future is None:
            return None
        # Shielded: a follower that leaves must not cancel the leader's future for the others.
        self.following += 1
        try:
            async with self._clock.timeout(deadline_s):
                return await asyncio.shield(future)
        except TimeoutError:
            raise DeadlineExceededError(
                "The request's deadline passed while an identical request's answer, which it "
                "waits for, was on its way."
            ) from None
        finally:
            self.following -= 1

    @contextmanager
    def lead(self, name: str) -> Iterator[Flight | None]:
        """Lead the flight of `name` (None: one is under way already, as for a follower whose
        leader landed with nothing while another took off)."""
        if name in self._open:
            yield None
            return
        future: asyncio.Future[pb.CachedAnswer | None] = asyncio.get_running_loop().create_future()
        self._open[name] = future
        try:
            yield Flight(future)
        finally:
            del self._open[name]
            if not future.done():
                future.set_result(None)  # failed or left: the followers ask themselves
