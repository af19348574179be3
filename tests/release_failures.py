"""A state store whose key releases fail, and the log line that tells of it: for the tests that
a failed release is logged once and never told to a caller in the place of what it is owed
(its answer, or its call's own error)."""

from __future__ import annotations

import pytest

from router_service.errors import StoreUnavailableError
from router_service.state import MemoryStateStore


class FailingReleases(MemoryStateStore):
    """Memory state (releases inline, before the answer) whose releases raise `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def release(self, resource: str, lease_id: str) -> None:
        raise self.error


class FailingGiveBacks(MemoryStateStore):
    """Memory state whose un-counts (negative tpm or rpm corrections: a give-back, a usage
    below its estimate settled) raise `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        if delta < 0 or requests < 0:
            raise self.error
        await super().add_tokens(resource, window, delta, requests, lease_id=lease_id)


# The store lost (UNAVAILABLE were it told) and any other failure (INTERNAL).
RELEASE_ERRORS = [StoreUnavailableError("redis: connection lost"), RuntimeError("store bug")]
RELEASE_IDS = ["store_lost", "other"]

FINISHED = "ending a finished attempt failed"
FAILED = "ending a failed attempt failed"


def logged_once(caplog: pytest.LogCaptureFixture, what: str = FINISHED) -> None:
    """The failed release told the log once, without the key (the lease expires by its TTL)."""
    failed = [r for r in caplog.records if what in r.getMessage()]
    assert len(failed) == 1, [r.getMessage() for r in caplog.records]
    assert "sk-alpha" not in caplog.text
