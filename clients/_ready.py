"""A call that may not be sent twice waits, bounded, for a connection before it is sent.

Such calls keep only grpc's transparent retries (clients/_base.py, `IDEMPOTENT_METHODS`): made
while no connection is up (a lone router restarting: refused, the channel in TRANSIENT_FAILURE)
one would fail at once. No router can have seen a call made before the channel is READY, so
waiting for it is safe; the call is then sent once, as before.

Not grpc's own ``wait_for_ready``: without a deadline it waits forever, and the bound cannot be
shorter than the call's deadline (a stream's runs as long as the model writes). Not a watch per
call either: a cancelled watch stays in grpc Core until the channel's state changes, so one task
per channel watches, and callers wait on it with their own bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc

from clients._base import IDEMPOTENT_METHODS

__all__ = ["READY_WAIT_S", "ReadyGate"]

# About what the retries of reads wait for a router back (`RETRY_POLICY`: ~3 s on average).
READY_WAIT_S = 3.0
_SENT_AT_ONCE = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.SHUTDOWN)
_READS = {
    service.rpartition(".")[2].removesuffix("Service").lower(): frozenset(methods)
    for service, methods in IDEMPOTENT_METHODS.items()
}  # {"router": {...}, "admin": {...}}: the clients' names for the two stubs


class ReadyGate:
    """One channel's wait for READY, shared by the calls made while it is not."""

    def __init__(self, channel: Any, bound_s: float = READY_WAIT_S) -> None:
        self._channel = channel
        self._bound_s = bound_s
        self._watch: asyncio.Task[None] | None = None

    async def timeout_left(
        self,
        stub: str,
        rpc: str,
        timeout: float | None,  # noqa: ASYNC109 - the gRPC deadline
    ) -> float | None:
        """`timeout` less the time waited: nothing (one state read) when the channel is READY or
        `rpc` a read (its retries wait); else up to the bound, never past `timeout`. A channel
        still not READY then is the call's to fail (UNAVAILABLE, as without the wait)."""
        # try_to_connect: an IDLE channel (never used, or idle too long) starts connecting now.
        if self._channel.get_state(True) in _SENT_AT_ONCE or rpc in _READS[stub]:
            return timeout
        if self._watch is None or self._watch.done():
            self._watch = asyncio.get_running_loop().create_task(
                self._channel.channel_ready(), name="switchboard-channel-ready"
            )
            self._watch.add_done_callback(_retrieved)
        loop = asyncio.get_running_loop()
        started = loop.time()
        limit = self._bound_s if timeout is None else min(self._bound_s, timeout)
        await asyncio.wait((self._watch,), timeout=limit)  # our bound ends our wait, not the watch
        return None if timeout is None else max(0.0, timeout - (loop.time() - started))

    def close(self) -> None:
        """Stop watching (the channel is closing)."""
        if self._watch is not None:
            self._watch.cancel()


def _retrieved(watch: asyncio.Task[None]) -> None:
    # A channel closed under the watch ends it with grpc's UsageError: nothing waits for that.
    if not watch.cancelled():
        with contextlib.suppress(Exception):
            watch.result()
