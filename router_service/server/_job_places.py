"""A background response's place among its client's running ones (`responses.
max_background_per_client`, across the replicas: `StateStore.enter`, a mark per job that expires
should its replica crash).

A job waiting out a cooldown (every deployment of its model cooling: an unattended call waits
where a caller on a socket is refused, `RequestContext.unattended`) steps aside for the wait
(`JobPlace.aside`, the planner's `RequestContext.set_aside`): its place goes back, so its
client's other responses (another model's, which another deployment serves) start meanwhile
instead of a 429, and it takes one again before it is routed, in its turn (`_retake`). No more
of a client's jobs wait so than `max_background_per_client` (a mark of their own, `bg-aside:`,
kept until the job has its place back): one past it waits holding its place, as a batch's line
past `batches.concurrency` does (`_line_slots.py`).

Back from its wait, a job queues for a place: a ticket in the store (`bg-queue:`, a mark named
by when it queued on the router's clock, then its id: the order every replica reads), and a turn
in this replica's line (`PlaceLines`). It takes a place only while more are free than older
tickets wait (`enter`'s limit: the cap less those), and a start only while more are free than
tickets wait at all: a place freed goes to the oldest waiter, never to a newcomer, on whichever
replica each runs. A place given back here wakes the oldest waiter here at once (it once read
the store every second, and a start could take the place between two reads, again and again);
one freed on another replica (or a mark expired) is read every `POLL_S`, a safety net. (A
batch's lines need none of it: their slots are one process's, `Slots`, served in order and
handed over as one is given back.)
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.errors import StoreUnavailableError
from router_service.sessions import client_scoped
from router_service.state import StateStore

__all__ = ["JobPlace", "PlaceLines"]

log = logging.getLogger("switchboard.router")

# How often a job waiting for a place reads the store unwoken: a place freed on another replica
# (one freed here wakes it at once). Its ticket is renewed as often, and lasts `TICKET_TTL_S`: a
# crashed replica's waiters stop being owed places soon (its running jobs' places last longer).
POLL_S = 10.0
TICKET_TTL_S = 3 * POLL_S


class PlaceLines:
    """This replica's jobs waiting for a place, per client (`group`), in their tickets' order
    (the store's: the first here is the one a place goes to, should no older wait elsewhere;
    not the order they queued in, which two tickets of one instant, or a clock set back, would
    make another: the first woken refused, the place left to a poll): one given back here
    wakes the first (`wake`), which wakes the next once it has its place. And the cap in force
    (`cap`: the serving runtime's, a reload's): a job back from a cooldown wait takes its
    place again by it, not by its start's."""

    def __init__(self) -> None:
        self.cap = 0
        self._lines: dict[str, list[tuple[str, asyncio.Event]]] = {}

    def reconfigured(self, cap: int) -> None:
        """A reload's cap: raised maybe, every client's first reads again at once."""
        self.cap = cap
        for group in self._lines:
            self.wake(group)

    def wake(self, group: str) -> None:
        line = self._lines.get(group)
        if line:
            line[0][1].set()

    @contextlib.contextmanager
    def turn(self, group: str, ticket: str) -> Iterator[asyncio.Event]:
        """A turn in `group`'s line, in `ticket`'s place (set: read whether a place is free);
        out of it, the next one is woken (a place may be left, or the first went away)."""
        turn = (ticket, asyncio.Event())
        line = self._lines.setdefault(group, [])
        bisect.insort(line, turn, key=_ticket_of)
        try:
            yield turn[1]
        finally:
            line.remove(turn)
            if line:
                line[0][1].set()
            else:
                del self._lines[group]


def _ticket_of(turn: tuple[str, asyncio.Event]) -> str:
    return turn[0]


@dataclass(eq=False)
class JobPlace:
    """One job's place (`token`: its mark; "" while it is given back)."""

    store: StateStore
    clock: Clock
    client: str
    job_id: str
    ttl_s: float  # a mark's: the job's time limit and a heartbeat
    lines: PlaceLines  # this replica's waiters, and the cap in force
    token: str = ""
    owed: int = 0  # the places `enter` found owed to older waiters (a start: to all of them)

    @property
    def group(self) -> str:
        return "bg-jobs:" + client_scoped(self.client, "")

    @property
    def queue(self) -> str:
        return "bg-queue:" + client_scoped(self.client, "")

    async def enter(self, ticket: str | None = None) -> bool:
        """Take a place, if the client's jobs leave one beyond those owed to the waiters: all
        of them for a start, those that queued before `ticket` for a waiter."""
        waiting = await self.store.members(self.queue)
        self.owed = owed = sum(1 for queued in waiting if ticket is None or queued < ticket)
        limit = self.lines.cap - owed
        if limit <= 0:
            return False
        token = await self.store.enter(self.group, self.job_id, limit=limit, ttl_s=self.ttl_s)
        self.token = token or ""
        return token is not None

    def refusal(self) -> str:
        """Why `enter` refused a start (the 429's message): the client's places all taken, by
        its responses running or owed to those back from a cooldown wait."""
        cap = self.lines.cap
        if not self.owed:
            return (
                f"This client runs {cap} background responses already"
                " (responses.max_background_per_client): wait for one to finish."
            )
        return (
            f"This client's {cap} places for background responses"
            " (responses.max_background_per_client) are taken, by those it runs and"
            f" {self.owed} of its responses back from a cooldown wait, first in line for one:"
            " wait for one to finish."
        )

    async def leave(self) -> None:
        """Give the place back (none held: nothing); a failure (the state store lost) is
        logged, not raised over how the job ended: the place expires with its TTL."""
        token, self.token = self.token, ""
        if not token:
            return
        try:
            await uncut(self.store.leave(self.group, self.job_id, token))
            self.lines.wake(self.group)  # the oldest waiter here: its place, maybe
        except Exception:
            log.warning(
                "background response %s: its place among the client's jobs was not given back"
                " (it expires after responses.background_timeout_s)",
                self.job_id,
                exc_info=True,
            )

    @asynccontextmanager
    async def aside(self) -> AsyncIterator[None]:
        """The place given back while the job waits (unless as many of the client's jobs wait
        so already, or the store cannot tell), taken again after the wait; a wait cancelled
        (the job cancelled, stopped, out of time) takes none."""
        aside = "bg-aside:" + client_scoped(self.client, "")
        try:
            limit, ttl_s = self.lines.cap, self.ttl_s
            mark = await self.store.enter(aside, self.job_id, limit=limit, ttl_s=ttl_s)
        except StoreUnavailableError:
            mark = None
        if mark is None or not self.token:
            if mark is not None:
                await _forget(self.store, aside, self.job_id, mark)
            yield
            return
        try:
            await self.leave()
            yield
            # Back: routed once a place is free, still counted among those waiting without
            # one until then (else another steps aside meanwhile, and a third takes its place).
            await self._retake()
        finally:
            await _forget(self.store, aside, self.job_id, mark)

    async def _retake(self) -> None:
        """A place again, in the order the client's jobs queued for one (see the module): a
        ticket of fixed width, so that names sort as the instants they hold."""
        ticket = f"{self.clock.now():020.6f}:{self.job_id}"
        with self.lines.turn(self.group, ticket) as turn:  # out of it once its ticket is gone
            mark, marked = await self._ticket(ticket), self.clock.monotonic()
            try:
                while True:
                    turn.clear()  # a wake from now on is read again
                    if await self.enter(ticket):
                        return
                    # Renewed every `POLL_S`, woken meanwhile or not (a waiter woken and refused
                    # more often would let it lapse): its name keeps its turn.
                    if self.clock.monotonic() - marked >= POLL_S:
                        renewed, old = await self._ticket(ticket), mark
                        mark, marked = renewed, self.clock.monotonic()
                        await _forget(self.store, self.queue, ticket, old)
                    await _woken(turn, self.clock)
            finally:
                await _forget(self.store, self.queue, ticket, mark)

    async def _ticket(self, ticket: str) -> str:
        """A mark of `ticket` in the client's queue (one per job: no limit)."""
        queue, ttl_s = self.queue, TICKET_TTL_S
        mark = await self.store.enter(queue, ticket, limit=None, ttl_s=ttl_s)
        assert mark is not None, "a group without a limit admits every member"
        return mark


async def _woken(turn: asyncio.Event, clock: Clock) -> None:
    """Until `turn` is set or `POLL_S` went by on `clock`."""
    with contextlib.suppress(TimeoutError):
        async with clock.timeout(POLL_S):
            await turn.wait()


async def _forget(store: StateStore, group: str, job_id: str, mark: str) -> None:
    """Leave `group`: a failure is logged (the mark expires with its TTL), never raised over
    the wait's own end (its cancellation included)."""
    try:
        await uncut(store.leave(group, job_id, mark))
    except Exception:
        log.warning("background response %s: its wait's mark not given back", job_id)
