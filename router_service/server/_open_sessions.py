"""OpenSession: a Realtime session as an operator sees it (AdminService.ListJobs): who, which
deployment and key (by fingerprint), since when, and the events relayed each way as they pass.
Each relay keeps one; `LiveSessions.listed` gives those open now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["OpenSession"]

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
