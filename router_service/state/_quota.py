"""ByteQuota: bytes an owner may write per period, counted in the state store's buckets.

What the router keeps for a client beyond its calls (stored responses, cached answers) is not
counted in rpm, so each is held to a byte quota per period: shared by the replicas on one store,
given back by the bucket's own expiry. A soft cap: writes checked together may pass it by one
entry each, as token budgets do.
"""

from __future__ import annotations

import math

from router_service.clock import Clock
from router_service.state._base import StateStore

__all__ = ["ByteQuota"]

_FIELD = "bytes"
# A bucket outlives its period a little: a replica whose clock is behind still reads it.
_SLACK_S = 60.0


class ByteQuota:
    def __init__(self, store: StateStore, clock: Clock, *, limit_bytes: int, period_s: float):
        self._store = store
        self._clock = clock
        self.limit_bytes = limit_bytes
        self.period_s = period_s

    async def take(self, name: str, size: int) -> bool:
        """Count `size` against `name`'s quota this period; False, and nothing counted, when it
        does not fit. What is written lives one period, so an owner holds at most this period's
        bytes and the last's: twice the quota."""
        bucket = math.floor(self._clock.now() / self.period_s)
        (buckets,) = await self._store.read_buckets([name])
        used = buckets.get(bucket, {}).get(_FIELD, 0.0)
        if used + size > self.limit_bytes:
            return False
        ttl_s = (bucket + 1) * self.period_s - self._clock.now() + _SLACK_S
        await self._store.add_to_bucket(name, bucket, {_FIELD: float(size)}, ttl_s)
        return True

    async def used(self, names: list[str]) -> list[int]:
        """Each name's bytes counted this period."""
        bucket = math.floor(self._clock.now() / self.period_s)
        found = await self._store.read_buckets(names)
        return [int(buckets.get(bucket, {}).get(_FIELD, 0.0)) for buckets in found]
