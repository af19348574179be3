"""The blocking client's channel and the calls under way on it, so that a channel the client
replaced (`use_credentials`, router names that moved) closes once they have ended: closing a
blocking channel cancels its calls, and it cannot wait for them as grpc.aio's can."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["ChannelCalls"]


class ChannelCalls:
    """One channel of a blocking client, its stubs, and how many calls run on it."""

    def __init__(self, channel: Any, router: Any, admin: Any) -> None:
        self.channel = channel
        self.router = router  # the stubs on this channel: a call counted here is sent here
        self.admin = admin
        self._running = 0
        self._retired = False  # replaced: it closes when its last call ends
        self._closed = False
        self._lock = threading.Lock()

    def begin(self) -> bool:
        """Count a call starting on this channel; False once it is retired (take the new)."""
        with self._lock:
            if self._retired:
                return False
            self._running += 1
            return True

    def end(self) -> None:
        """A call counted by `begin` has ended."""
        with self._lock:
            self._running -= 1
            last = self._retired and self._running == 0
        if last:
            self.close()

    def retire(self) -> None:
        """Take no more calls, and close once those under way have ended (now, if none)."""
        with self._lock:
            self._retired = True
            idle = self._running == 0
        if idle:
            self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the channel (cancelling what still runs on it); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.channel.close()
