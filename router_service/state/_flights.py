"""Flights in the state store: one caller leads the upstream call that identical requests need,
the others wait for it to land (the response cache's `coalesce: cluster`, cache/_cluster.py).

The store's part is small: a lease per name (`StateStore.claim_flight`: one atomic step, so of
two claimers one leads), renewed by its leader while its call runs (`renew_flight`: only while
it is still its own), its end (`land_flight`: the owner's lease goes, and everyone watching
the name hears how it landed), and the watching (`watch_flight`). A watch is opened before the
claim, so that a landing heard between the claim's reply and the wait is not missed (on Redis
the notice comes on another connection than the reply, and may overtake it).

Here: what both stores share (the landings, the claim's answer, the watches of one process) and
the memory store's leases.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from router_service.clock import Clock

__all__ = ["FlightBoard", "FlightClaim", "FlightWatch", "Landing", "MemoryFlights"]

# Sweep lapsed leases once this many are held, so names nobody lands cannot accumulate.
_SWEEP_AT = 4096


class Landing(enum.Enum):
    """How a flight ended, as those waiting for it hear it."""

    KEPT = "kept"  # its answer is in the store: read it there
    EMPTY = "empty"  # it failed, or its caller left: nothing was kept
    LAPSED = "lapsed"  # nothing heard: its lease ran out (its replica died) or hearing stopped


@dataclass(frozen=True, slots=True)
class FlightClaim:
    """What `StateStore.claim_flight` found."""

    token: str | None  # set: this caller leads, and ends the flight with `land_flight`
    holder: str = ""  # else the leader's token,
    left_s: float = 0.0  # and how long its lease has left (0: no flight to wait for, go alone)


class FlightWatch:
    """The landings of one name heard since the watch was opened."""

    __slots__ = ("_changed", "_clock", "_emptied", "_kept", "_lapsed")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock  # the store's: a lease's time left is on it
        self._kept = False
        self._lapsed = False
        self._emptied: set[str] = set()
        self._changed = asyncio.Event()

    def hear(self, token: str, landing: Landing) -> None:
        if landing is Landing.KEPT:
            self._kept = True
        elif landing is Landing.EMPTY:
            self._emptied.add(token)
        else:
            self._lapsed = True
        self._changed.set()

    def _heard(self, holder: str) -> Landing | None:
        if self._kept:  # any flight of the name that kept its answer: the answer is there
            return Landing.KEPT
        if holder in self._emptied:  # only the holder's own failure (not an older flight's)
            return Landing.EMPTY
        return Landing.LAPSED if self._lapsed else None

    async def landing(self, holder: str, within_s: float) -> Landing:
        """How the flight `holder` leads landed: KEPT (or another flight of the name kept its
        answer), EMPTY, or LAPSED when nothing was heard within `within_s` (what its lease
        had left, on the store's clock, which the lease's expiry is on) or hearing stopped
        (a lost subscriber)."""
        try:
            async with self._clock.timeout(max(0.0, within_s)):
                while (heard := self._heard(holder)) is None:
                    self._changed.clear()
                    await self._changed.wait()
                return heard
        except TimeoutError:
            return Landing.LAPSED

    @property
    def deaf(self) -> bool:
        """Hearing stopped (a lost subscriber): a landing may have gone unheard."""
        return self._lapsed

    def rearm(self) -> None:
        """Forget what was heard so far: `notified` then waits for what comes after this."""
        self._changed.clear()

    async def notified(self, within_s: float, *, on_clock: bool = False) -> bool:
        """Whether any landing of the name was heard since `rearm` (waiting up to `within_s`):
        a reader of a growing document rearms, reads it, then waits here for the next change.
        `on_clock`: `within_s` is timed on the store's clock (the router's), as `landing` is,
        for a reader whose silence is a lease's time; else on the event loop's."""
        window = self._clock.timeout if on_clock else asyncio.timeout
        try:
            async with window(max(0.0, within_s)):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True


class FlightBoard:
    """The watches open in this process, by name: a landing is told to each of its name's."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._watches: dict[str, set[FlightWatch]] = {}

    @property
    def watching(self) -> int:
        """Watches open now (tests: a leak would show here)."""
        return sum(len(watches) for watches in self._watches.values())

    def watches_of(self, name: str) -> int:
        """Watches open on `name` now (tests: one name's apart from the others')."""
        return len(self._watches.get(name, ()))

    @contextmanager
    def watch(self, name: str) -> Iterator[FlightWatch]:
        watch = FlightWatch(self._clock)
        self._watches.setdefault(name, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches[name]
            watches.discard(watch)
            if not watches:
                del self._watches[name]

    def announce(self, name: str, token: str, landing: Landing) -> None:
        for watch in self._watches.get(name, ()):
            watch.hear(token, landing)

    def lapse_all(self) -> None:
        """Nothing more can be heard (a lost subscriber): every watcher stops waiting."""
        for watches in self._watches.values():
            for watch in watches:
                watch.hear("", Landing.LAPSED)


class MemoryFlights:
    """The memory store's flight leases: name -> (token, expiry on the store's clock)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._leases: dict[str, tuple[str, float]] = {}
        self._ids = itertools.count(1)
        self.board = FlightBoard(clock)

    def claim(self, name: str, ttl_s: float) -> FlightClaim:
        now = self._clock.now()
        held = self._leases.get(name)
        if held is not None and held[1] > now:
            return FlightClaim(None, held[0], held[1] - now)
        if held is None and len(self._leases) >= _SWEEP_AT:
            for lapsed in [n for n, (_, expiry) in self._leases.items() if expiry <= now]:
                del self._leases[lapsed]
        token = f"f{next(self._ids)}"
        self._leases[name] = (token, now + ttl_s)
        return FlightClaim(token)

    def renew(self, name: str, token: str, ttl_s: float) -> bool:
        held = self._leases.get(name)
        if held is None or held[0] != token:
            return False
        self._leases[name] = (token, self._clock.now() + ttl_s)
        return True

    def left(self, name: str, token: str) -> float:
        held = self._leases.get(name)
        if held is None or held[0] != token:
            return 0.0
        return max(0.0, held[1] - self._clock.now())

    def land(self, name: str, token: str, landing: Landing) -> None:
        held = self._leases.get(name)
        if held is not None and held[0] == token:
            del self._leases[name]
        self.board.announce(name, token, landing)

    @property
    def held(self) -> int:
        """Leases held (live or lapsed, not yet swept)."""
        return len(self._leases)
