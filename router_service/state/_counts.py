"""The memory store's counts: integers counted up with a TTL, or cleared (`StateStore.add_count`),
apart so that the store's module stays one screenful per kind."""

from __future__ import annotations

from router_service.clock import Clock

__all__ = ["MemoryCounts"]

# Expired counts are swept when a new one would make this many.
_SWEEP_AT = 4096


class MemoryCounts:
    """The count part of MemoryStateStore (a mixin: it shares the store's clock)."""

    _clock: Clock
    # name -> (total, expiry, last counted at, first counted at)
    _counts: dict[str, tuple[int, float, float, float]]

    async def add_count(self, name: str, ttl_s: float, *, restart_if_before: float = 0.0) -> int:
        now = self._clock.now()
        self._sweep_for(name, now)
        count, expiry, _, began = self._counts.get(name, (0, now, now, now))
        if expiry <= now or began < restart_if_before:
            count, began = 0, now
        self._counts[name] = (count + 1, now + ttl_s, now, began)
        return count + 1

    def mirror_count(self, name: str, total: int, ttl_s: float) -> None:
        """`name` as the shared store counted it (ResilientStateStore): an outage counts on
        from what this replica knew, as it keeps the deadlines it knew."""
        now = self._clock.now()
        self._sweep_for(name, now)
        self._counts[name] = (total, now + ttl_s, now, now)

    async def clear_count(self, name: str, *, up_to: float | None = None) -> None:
        if up_to is None or self._counts.get(name, (0, 0.0, up_to, 0.0))[2] <= up_to:
            self._counts.pop(name, None)

    def _sweep_for(self, name: str, now: float) -> None:
        """Room for `name`: the expired counts go when it would make `_SWEEP_AT`."""
        if name not in self._counts and len(self._counts) >= _SWEEP_AT:
            for key in [k for k, (_, expiry, _, _) in self._counts.items() if expiry <= now]:
                del self._counts[key]
