"""OpenSessions: the Realtime sessions open on this replica, for AdminService.ListJobs. The relay
registers a session once its upstream socket is open and leaves in a `finally`; the entry counts
the events relayed each way as they pass."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["OpenSession", "OpenSessions"]

_T = TypeVar("_T")


@dataclass(eq=False, slots=True)
class OpenSession:
    client: str
    model_group: str  # the model name as the caller sent it
    deployment: str
    key_fingerprint: str  # never the key
    opened_unix: float
    events_from_caller: int = 0
    events_to_caller: int = 0

    async def from_caller(self, events: AsyncIterator[_T]) -> AsyncIterator[_T]:
        """`events`, each counted as it passes."""
        async for event in events:
            self.events_from_caller += 1
            yield event


class OpenSessions:
    def __init__(self) -> None:
        self._open: dict[int, OpenSession] = {}
        self._ids = itertools.count()

    @contextmanager
    def opened(self, session: OpenSession) -> Iterator[OpenSession]:
        """`session` is listed while the block runs."""
        number = next(self._ids)
        self._open[number] = session
        try:
            yield session
        finally:
            del self._open[number]

    def listed(self) -> list[OpenSession]:
        """The sessions open now, newest first."""
        return sorted(self._open.values(), key=lambda s: s.opened_unix, reverse=True)
