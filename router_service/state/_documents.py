"""Documents in one process: byte strings with an expiry, within a byte budget.

A document (a stored Responses API response) is large next to everything else the state keeps,
written once and read a few times. The budget bounds the memory they take whatever the traffic:
when a new one does not fit, the oldest are dropped first (before their expiry), and one larger
than the whole budget is not kept at all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from router_service.clock import Clock

__all__ = ["DEFAULT_DOCUMENT_BYTES", "MemoryDocuments"]

DEFAULT_DOCUMENT_BYTES = 64 * 1024 * 1024  # `state.memory_document_bytes`


class MemoryDocuments:
    def __init__(self, clock: Clock, budget_bytes: int = DEFAULT_DOCUMENT_BYTES) -> None:
        self._clock = clock
        self._budget = budget_bytes
        # name -> (data, expiry), oldest write first: what the budget drops first.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes held now (tests prove the budget holds)."""
        return self._bytes

    def put(self, name: str, data: bytes, ttl_s: float) -> bool:
        """Keep `data` under `name` for `ttl_s`; False when it is larger than the budget."""
        self._drop(name)
        size = _size(name, data)
        if size > self._budget:
            return False
        if self._bytes + size > self._budget:
            self._sweep_expired()
        while self._entries and self._bytes + size > self._budget:
            self._drop(next(iter(self._entries)))
        self._entries[name] = (data, self._clock.now() + ttl_s)
        self._bytes += size
        return True

    def get(self, names: Sequence[str]) -> list[bytes | None]:
        now = self._clock.now()
        out: list[bytes | None] = []
        for name in names:
            entry = self._entries.get(name)
            if entry is not None and entry[1] <= now:
                self._drop(name)
                entry = None
            out.append(None if entry is None else entry[0])
        return out

    def delete(self, name: str) -> bool:
        """Remove `name`; False when it was absent or expired."""
        live = self.get([name])[0] is not None
        self._drop(name)
        return live

    def _drop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            self._bytes -= _size(name, entry[0])

    def _sweep_expired(self) -> None:
        # Only when the budget is reached. Writes come in order, but TTLs can differ (a reload
        # changes them): all are looked at.
        now = self._clock.now()
        for name in [n for n, (_, expiry) in self._entries.items() if expiry <= now]:
            self._drop(name)


def _size(name: str, data: bytes) -> int:
    # The name counts too: many empty documents must not grow the map without bound.
    return len(name) + len(data)
