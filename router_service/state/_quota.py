"""ByteQuota: bytes an owner may write per period, counted in the state store's buckets.

What the router keeps for a client beyond its calls (stored responses, cached answers) is not
counted in rpm, so each is held to a byte quota per period: shared by the replicas on one store,
given back by the bucket's own expiry. What is written lives one period, so an owner holds at
most this period's bytes and the last's: twice the quota. A write asks for `room`, and is
counted (`charge`) once it is done: one refused counts nothing. A soft cap: writes checked
together may pass it by one entry each, as token budgets do. `reading` says where owners stand
without counting (an operator's view: AdminService.ListClients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from router_service.clock import Clock
from router_service.state._base import StateStore

__all__ = ["ByteQuota", "QuotaReading", "QuotaStanding"]

_FIELD = "bytes"
# A bucket outlives its period a little: a replica whose clock is behind still reads it.
_SLACK_S = 60.0


@dataclass(frozen=True, slots=True)
class QuotaStanding:
    """What one owner wrote in the current period, against its quota."""

    used: int  # bytes counted
    quota: int
    resets_unix: float  # when the period ends and the count starts from zero


@dataclass(frozen=True, slots=True)
class QuotaReading:
    """What the quotas of some owners need read: the bucket `names`, and the `standing` their
    buckets give, so that a reader can ask for them in one `read_buckets` with other names."""

    names: list[str]
    bucket: int  # the current period
    period_s: float
    quota: int

    @property
    def resets_unix(self) -> float:
        return (self.bucket + 1) * self.period_s

    def standing(self, found: list[dict[int, dict[str, float]]]) -> list[QuotaStanding]:
        """Each owner's standing, from the buckets `read_buckets(names)` found."""
        return [
            QuotaStanding(
                int(buckets.get(self.bucket, {}).get(_FIELD, 0.0)), self.quota, self.resets_unix
            )
            for buckets in found
        ]


class ByteQuota:
    def __init__(self, store: StateStore, clock: Clock, *, limit_bytes: int, period_s: float):
        self._store = store
        self._clock = clock
        self.limit_bytes = limit_bytes
        self.period_s = period_s

    def reading(self, names: list[str]) -> QuotaReading:
        """What reading the quotas of `names` takes (their current period, now)."""
        return QuotaReading(
            names, self.bucket_at(self._clock.now()), self.period_s, self.limit_bytes
        )

    def bucket_at(self, unix_s: float) -> int:
        """The period (bucket) the instant `unix_s` falls in."""
        return math.floor(unix_s / self.period_s)

    async def room(self, name: str, size: int) -> int | None:
        """The period (bucket) `size` more bytes of `name` would be counted in; None when they
        do not fit. For a write that may still be refused: `charge` once it is done."""
        reading = self.reading([name])
        (standing,) = reading.standing(await self._store.read_buckets(reading.names))
        return None if standing.used + size > self.limit_bytes else reading.bucket

    async def charge(self, name: str, bucket: int, size: int) -> None:
        """Count `size` bytes of `name` in the period `bucket` (from `room`): nothing once
        that period is over and its bucket no longer read (a late charge's)."""
        ttl_s = (bucket + 1) * self.period_s - self._clock.now() + _SLACK_S
        if ttl_s <= 0:
            return
        await self._store.add_to_bucket(name, bucket, {_FIELD: float(size)}, ttl_s)

    async def used(self, names: list[str]) -> list[int]:
        """Each name's bytes counted this period."""
        reading = self.reading(names)
        found = await self._store.read_buckets(reading.names)
        return [standing.used for standing in reading.standing(found)]
