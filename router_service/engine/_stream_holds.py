"""What an open stream holds, kept past the TTLs those holds carry. A key lease
(`server.lease_ttl_s`) and a session's active mark (`sessions.active_ttl_s`) expire in shared
state as a backstop for a router that died holding them; a stream may outlast both (a long
reasoning answer, a realtime session of an hour), and a hold expired under a running stream lets
the key's limits and the provider's session limit undercount. So while the stream runs, both are
renewed every third of the shorter TTL; its stack stops that before it gives them back."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Protocol

from router_service.cancellation import uncut
from router_service.clock import Clock
from router_service.errors import StoreUnavailableError
from router_service.keys import KeyLease
from router_service.sessions import ActiveMark, SessionState

log = logging.getLogger("switchboard.engine")

RENEWER = "switchboard-stream-renew"  # the task's name


class MarkHolder(Protocol):
    """Whoever leaves the mark when the stream ends: a renewal replaces it there."""

    mark: ActiveMark | None


def keep_holds(
    stack: AsyncExitStack,
    lease: KeyLease,
    holder: MarkHolder,
    sessions: SessionState,
    clock: Clock,
    ttl_s: float,
) -> None:
    """Renew `lease` and `holder.mark` every third of `ttl_s` (the shorter of their TTLs) until
    `stack` closes; stopped by `stack` before what it gives back after this call."""
    task = asyncio.create_task(_keep(lease, holder, sessions, clock, ttl_s / 3), name=RENEWER)

    async def stop() -> None:
        task.cancel()
        # A renewal under way ends first (`_keep`), also when the closing itself is cancelled
        # (a stop after the caller left): what closes next leaves the mark it made.
        await uncut(asyncio.wait((task,)))

    stack.push_async_callback(stop)


async def _keep(
    lease: KeyLease, holder: MarkHolder, sessions: SessionState, clock: Clock, every_s: float
) -> None:
    while True:
        await clock.wait(every_s)
        try:
            # Not cut halfway: a fresh mark whose holder never heard of it would count the
            # session until its TTL, after the stream's end left the old one.
            held = await uncut(_renew(lease, holder, sessions))
        except StoreUnavailableError as exc:  # the next period tries again
            log.warning("renewing a stream's key lease and mark failed: %s", exc.message)
            continue
        except Exception:  # a bug: the loop dying would let the holds expire
            log.exception("renewing a stream's key lease and mark failed")
            continue
        if not held:
            log.warning("a stream's key lease (key %s) expired before it was renewed", lease.key)


async def _renew(lease: KeyLease, holder: MarkHolder, sessions: SessionState) -> bool:
    """Renew both; whether the lease was still held."""
    held = await lease.renew()
    if holder.mark is not None:
        holder.mark = await sessions.renew(holder.mark)
    return held
