"""Flights: their part of the StateStore interface (`FlightStore`), apart so that `_base.py`
stays one screenful per kind. What the leases are and why: `_flights.py`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from router_service.state._flights import FlightClaim, FlightWatch, Landing

__all__ = ["FlightStore"]


class FlightStore(ABC):
    """The flight calls of the StateStore interface."""

    @abstractmethod
    def watch_flight(self, name: str) -> AbstractContextManager[FlightWatch]:
        """Hear how the flights of `name` land, from now until the block ends. Open it before
        `claim_flight`: a landing that comes between the claim's answer and the wait is then
        heard too."""

    async def hear_flights(self) -> bool:
        """Whether this replica hears the landings of every replica from now on (on Redis its
        subscriber, made first if need be): a watcher that claims no flight of its own asks
        this before it relies on `watch_flight` alone. False: wake on a timer too."""
        return True

    @abstractmethod
    async def claim_flight(self, name: str, ttl_s: float) -> FlightClaim:
        """Lead the flight of `name` for at most `ttl_s` (a token), unless a live one is led
        already: then its holder's token and what its lease has left. One atomic step: of two
        claimers, one leads. A store that could not tell this caller how the holder's flight
        lands (no subscriber) says `left_s` 0: go alone."""

    @abstractmethod
    async def land_flight(self, name: str, token: str, landing: Landing) -> None:
        """End the flight `token` leads: its lease goes (the owner's only: one that ran out and
        was claimed again stays) and every watcher of `name`, on every replica sharing the
        store, hears `landing`. Harmless when the lease is already gone."""

    @abstractmethod
    async def renew_flight(self, name: str, token: str, ttl_s: float) -> bool:
        """Hold the flight `token` leads for `ttl_s` more from now (its leader lives: its call
        still runs), in one atomic step with the check that the lease is still `token`'s.
        False: not renewed, because it is not (landed, or lapsed and claimed again: never
        renewed back) or because a store with a local fallback cannot reach the shared one now
        (one without raises StoreUnavailableError); the leader's next renewal tries again."""

    @abstractmethod
    async def flight_left(self, name: str, token: str) -> float:
        """What the lease `token` leads on `name` has left, on the store's clock, without
        claiming it: 0 when it ran out unrenewed (its leader died) or is not `token`'s any more
        (landed, claimed again). For a follower that reads the leader's work elsewhere (a
        shared stream's log) and hears nothing for a while."""
