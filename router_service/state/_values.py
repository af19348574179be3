"""Values (small strings with a TTL): their part of the StateStore interface (`ValueStore`) and
the memory store's (`MemoryValues`), apart so that each module stays one screenful per kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence

from router_service.clock import Clock

__all__ = ["MemoryValues", "ValueStore"]

# Expired values are swept when a new one would make this many.
_SWEEP_AT = 4096


class ValueStore(ABC):
    """The value calls of the StateStore interface."""

    @abstractmethod
    async def set_value(self, name: str, value: str, ttl_s: float) -> None:
        """Store a small value that expires after `ttl_s`."""

    @abstractmethod
    async def get_values(self, names: Sequence[str]) -> list[str | None]:
        """The live value of each name, None where absent or expired."""

    @abstractmethod
    async def set_value_if(
        self, name: str, value: str, ttl_s: float, *, was: Collection[str | None], unless: str
    ) -> bool:
        """`set_value`, only while `name`'s live value is one of `was` (None: absent or expired)
        and the deadline `unless` is not in force, decided in the same atomic step as the write
        (a why replaced once its disable is over, never over a why written since, nor while a
        new disable is in force). False: left as it was."""


class MemoryValues:
    """The value part of MemoryStateStore (a mixin: it shares the store's clock and deadlines)."""

    _clock: Clock
    _values: dict[str, tuple[str, float]]  # name -> (value, expiry)

    def _deadlines_now(self, names: Sequence[str]) -> list[float]:
        raise NotImplementedError

    async def set_value(self, name: str, value: str, ttl_s: float) -> None:
        if name not in self._values and len(self._values) >= _SWEEP_AT:
            now = self._clock.now()
            for key in [k for k, (_, exp) in self._values.items() if exp <= now]:
                del self._values[key]
        self._values[name] = (value, self._clock.now() + ttl_s)

    async def get_values(self, names: Sequence[str]) -> list[str | None]:
        now = self._clock.now()
        out: list[str | None] = []
        for name in names:
            entry = self._values.get(name)
            if entry is not None and entry[1] <= now:
                del self._values[name]
                entry = None
            out.append(entry[0] if entry is not None else None)
        return out

    async def set_value_if(
        self, name: str, value: str, ttl_s: float, *, was: Collection[str | None], unless: str
    ) -> bool:
        # Atomic as every call here: none awaits anything.
        if self._deadlines_now([unless])[0] or (await self.get_values([name]))[0] not in was:
            return False
        await self.set_value(name, value, ttl_s)
        return True
