"""What an open stream holds, kept past the TTLs those holds carry. A key lease
(`server.lease_ttl_s`) and a session's active mark (`sessions.active_ttl_s`) expire in shared
state as a backstop for a router that died holding them; a stream may outlast both (a long
reasoning answer, a realtime session of an hour), and a hold expired under a running stream lets
the key's limits and the provider's session limit undercount. So while the stream runs, both are
renewed about every third of the shorter TTL; its end stops that before it gives them back.

One renewer per runtime lineage (handed to a reloaded runtime's successor with the store, as
the Afterwork is), not a task per stream: an idle stream's memory and a stream's instructions
are counted (benchmarks/README.md, "An idle stream"), and a task, its timer and its
cancellation per stream cost both. A stream registers a small slotted `Hold`; the single task
wakes every third of the shortest TTL held and renews the holds due, together on a store that
sends concurrent calls in one round trip (Redis). It starts with the first hold and ends at a
wake that finds none (so streams one after another do not each start one), or at `aclose`.
A caller's stream slot alone (`SlotHold`, `keep_slot`) is renewed the same way: a Realtime
session's, a ResumeResponse's, a caller's reading a stream the response cache shares."""

from __future__ import annotations

import asyncio
import logging
import math
from abc import ABC, abstractmethod
from typing import Protocol

from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.errors import StoreUnavailableError
from router_service.keys import KeyLease
from router_service.sessions import ActiveMark, SessionState

log = logging.getLogger("switchboard.engine")

RENEWER = "switchboard-stream-renew"  # the task's name


class MarkHolder(Protocol):
    """Whoever leaves the mark when the stream ends: a renewal replaces it there."""

    mark: ActiveMark | None


class SlotOwner(Protocol):
    """Whoever holds a caller's stream slot (`max_concurrent_streams`, the auth gate's
    Admission): taken for `server.lease_ttl_s` when the call has no deadline, so a longer
    stream (or Realtime session) lost it midway and its client could open one more."""

    async def renew_stream_slot(self, ttl_s: float) -> bool: ...


class Held(ABC):
    """What a renewer keeps for one open stream, and when it is next due (monotonic seconds):
    `Hold` (a key lease and session mark) or `SlotHold` (a caller's stream slot)."""

    __slots__ = ("due", "every_s", "renewer", "renewing")

    def __init__(self, renewer: HoldRenewer, every_s: float, due: float) -> None:
        self.renewer = renewer
        self.every_s = every_s
        self.due = due
        self.renewing = False  # in the round under way: its stream's close waits for that

    @abstractmethod
    async def renew(self) -> None:
        """Renew what is held; a failure is logged (the next period tries again)."""

    def end(self) -> None:
        """No more renewals, from its own `renew` (nothing left to hold); its `stop` still
        follows (a no-op then)."""
        self.renewer._holds.discard(self)

    async def stop(self) -> None:
        """No more renewals; one under way ends first, also when the caller is cancelled
        meanwhile (a stop after the caller left): what is left next is the mark it made."""
        renewer = self.renewer
        renewer._holds.discard(self)
        if self.renewing and renewer._round is not None:
            await uncut(renewer._round)


class Hold(Held):
    """One open stream's key lease and session mark (and its client's stream slot, if it
    holds one)."""

    __slots__ = ("holder", "lease", "sessions", "slot")

    def __init__(
        self,
        renewer: HoldRenewer,
        lease: KeyLease,
        holder: MarkHolder,
        sessions: SessionState,
        every_s: float,
        due: float,
        slot: SlotOwner | None = None,
    ) -> None:
        super().__init__(renewer, every_s, due)
        self.lease = lease
        self.holder = holder
        self.sessions = sessions
        self.slot = slot

    async def renew(self) -> None:
        lease, holder = self.lease, self.holder
        try:
            held = await lease.renew()
            if holder.mark is not None:
                holder.mark = await self.sessions.renew(holder.mark)
            slot = self.slot
            if slot is not None and not await slot.renew_stream_slot(3 * self.every_s):
                log.warning("a stream's client stream slot expired before it was renewed")
        except StoreUnavailableError as exc:
            log.warning("renewing a stream's key lease and mark failed: %s", exc.message)
            return
        except Exception:  # a bug: the others, and the next period, go on
            log.exception("renewing a stream's key lease and mark failed")
            return
        if not held:
            log.warning("a stream's key lease (key %s) expired before it was renewed", lease.key)


class SlotHold(Held):
    """A caller's stream slot (`server.lease_ttl_s`) held by what outlives it: a Realtime
    session (OpenAI's last up to 60 minutes), a resumed background response, a reader of a
    shared cached stream. A slot expired under it lets `max_concurrent_streams` undercount."""

    __slots__ = ("owner", "ttl_s")

    def __init__(
        self, renewer: HoldRenewer, owner: SlotOwner, ttl_s: float, every_s: float, due: float
    ) -> None:
        super().__init__(renewer, every_s, due)
        self.owner = owner
        self.ttl_s = ttl_s

    async def renew(self) -> None:
        try:
            if not await self.owner.renew_stream_slot(self.ttl_s):
                log.warning("a caller's stream slot expired before it was renewed")
        except StoreUnavailableError as exc:
            log.warning("renewing a caller's stream slot failed: %s", exc.message)
        except Exception:  # a bug: the others, and the next period, go on
            log.exception("renewing a caller's stream slot failed")


class HoldRenewer:
    """Renews the holds of every open stream of a runtime lineage (see the module's doc)."""

    def __init__(self, clock: Clock, *, together: bool) -> None:
        self._clock = clock
        self._together = together  # `StateStore.batches_concurrent_calls`
        self._holds: set[Held] = set()
        self._task: asyncio.Task[None] | None = None
        self._period = math.inf  # the running task's wait
        self._waiting = False  # the task waits (rather than renews)
        self._round: asyncio.Future[None] | None = None
        self._closed = False

    def keep(
        self,
        lease: KeyLease,
        holder: MarkHolder,
        sessions: SessionState,
        ttl_s: float,
        slot: SlotOwner | None = None,
    ) -> Hold:
        """Renew `lease`, `holder.mark` (`ttl_s`: the shorter of their TTLs) and the client's
        stream `slot` (for `ttl_s` too) until the hold's `stop`, which the holder awaits before
        it gives them back. (Not an exit-stack callback of its own: its closure and wrapper
        were ~0.75 KiB a stream.)"""
        every_s = ttl_s / 3
        due = self._clock.monotonic() + every_s
        hold = Hold(self, lease, holder, sessions, every_s, due, slot)
        self.add(hold)
        return hold

    def keep_slot(self, owner: SlotOwner, ttl_s: float) -> SlotHold:
        """Renew `owner`'s stream slot for `ttl_s` every third of it until the hold's `stop`."""
        every_s = ttl_s / 3
        hold = SlotHold(self, owner, ttl_s, every_s, self._clock.monotonic() + every_s)
        self.add(hold)
        return hold

    def add(self, hold: Held) -> None:
        """Renew `hold` (its `due`, then every `every_s`) until its `stop`: a `Held` of
        another's making (a cluster flight's lease, `cache/_cluster.py`)."""
        self._holds.add(hold)
        if hold.every_s < self._period and not self._closed:
            self._start(hold.every_s)

    def _start(self, every_s: float) -> None:
        """A task that wakes every `every_s`: none ran, or the one running waits longer than
        a new hold may (a reloaded config shortened a TTL); one renewing sets its next wait
        from the holds it finds after the round."""
        if self._task is not None:
            if not self._waiting:
                return
            self._task.cancel()  # in its wait: nothing is cut halfway
        self._period = every_s
        self._task = asyncio.get_running_loop().create_task(self._run(), name=RENEWER)

    async def _run(self) -> None:
        while True:
            self._waiting = True
            await self._clock.wait(self._period)
            self._waiting = False
            holds = self._holds
            if not holds:  # a period without a stream: the next one starts a task again
                self._task, self._period = None, math.inf
                return
            # Due within half a period: every hold is renewed at least every 1.5 periods of
            # its own (half its TTL), whatever its phase against this task's wakes.
            now = self._clock.monotonic()
            late = now + self._period / 2
            due = [hold for hold in holds if hold.due <= late]
            if due:
                for hold in due:
                    hold.renewing = True
                self._round = asyncio.ensure_future(self._renew(due, now))
                # Not cut halfway (a stop): a fresh mark whose holder never heard of it would
                # count the session until its TTL, after the stream's end left the old one.
                await uncut(self._round)
            if self._holds:
                self._period = min(hold.every_s for hold in self._holds)

    async def _renew(self, due: list[Held], now: float) -> None:
        try:
            if self._together and len(due) > 1:
                await asyncio.gather(*(hold.renew() for hold in due))
            else:
                for hold in due:
                    if hold in self._holds:  # else its stream ended meanwhile
                        await hold.renew()
        finally:
            for hold in due:
                hold.renewing = False
                hold.due = now + hold.every_s
            self._round = None

    async def aclose(self) -> None:
        """Stop renewing (the runtime lineage's last close): holds still registered end by
        their TTL, as after a crash."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))
