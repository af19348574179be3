"""ResilientStateStore's flights: on the shared store only (they are for coalescing across
replicas); during an outage nothing is shared, so each replica goes alone (its own flights still
coalesce its misses), and nothing is queued for the shared store's return: a lease nobody heard
landed ends by its TTL, its followers then go on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import TypeVar

from router_service.state._base import FlightClaim, FlightWatch, Landing, StateStore
from router_service.state._journal import Write
from router_service.state._resilient_documents import _Down

__all__ = ["ResilientFlights"]

T = TypeVar("T")


class ResilientFlights:
    """The flight calls of a store with a shared and a local side (ResilientStateStore)."""

    shared: StateStore

    async def _try_shared(
        self, op: Callable[[], Awaitable[T]], undo: Callable[[T], Write | None] | None = None
    ) -> T | _Down:
        raise NotImplementedError  # ResilientStateStore's

    def watch_flight(self, name: str) -> AbstractContextManager[FlightWatch]:
        return self.shared.watch_flight(name)

    async def hear_flights(self) -> bool:
        return await self.shared.hear_flights()

    async def claim_flight(self, name: str, ttl_s: float) -> FlightClaim:
        # Unreachable: no flight across replicas (each replica's own still coalesce), so go alone.
        claim = await self._try_shared(
            lambda: self.shared.claim_flight(name, ttl_s),
            lambda taken: (
                None
                if taken.token is None
                else partial(self.shared.land_flight, name, taken.token, Landing.EMPTY)
            ),
        )
        return FlightClaim(None) if isinstance(claim, _Down) else claim

    async def land_flight(self, name: str, token: str, landing: Landing) -> None:
        # Not replayed: a lease nobody hears landed ends by its TTL, its followers then go on.
        await self._try_shared(lambda: self.shared.land_flight(name, token, landing))

    async def renew_flight(self, name: str, token: str, ttl_s: float) -> bool:
        # Unreachable: not renewed (False), and the leader's next renewal tries again (its
        # followers stopped hearing with the shared store anyway, and went on by themselves).
        renewed = await self._try_shared(lambda: self.shared.renew_flight(name, token, ttl_s))
        return False if isinstance(renewed, _Down) else renewed

    async def flight_left(self, name: str, token: str) -> float:
        # Unreachable: its log cannot be read either; 0 lets the follower go alone.
        left = await self._try_shared(lambda: self.shared.flight_left(name, token))
        return 0.0 if isinstance(left, _Down) else left
