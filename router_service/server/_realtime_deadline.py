"""A gRPC Realtime caller's deadline, ending its session the router's way: a little before gRPC
cancels the call (whose end then says nothing to the caller, and leaves the upstream socket to
a cancellation's cleanup), the relay closes the upstream socket and the call ends
DEADLINE_EXCEEDED with its details."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from router_service.engine import RequestContext
from router_service.engine._model import CANCEL_TRANSIT_S, grpc_timeout_rounding

__all__ = ["watch_deadline"]


def watch_deadline(
    ctx: RequestContext, end: Callable[[], Awaitable[None]]
) -> asyncio.Task[None] | None:
    """A task that runs `end` ahead of the call's deadline on the router's clock (the caller
    owns it: cancels and awaits it); None for a call with no deadline. Ahead by what gRPC may
    cancel the call before ours (`cancelled_at_deadline`'s bound), twice the transit."""
    remaining = ctx.remaining()
    if remaining is None:
        return None
    early = 2 * CANCEL_TRANSIT_S + grpc_timeout_rounding(ctx.grpc_timeout_s)

    async def at_deadline() -> None:
        await ctx.clock.wait(max(0.0, remaining - early))
        await end()

    return asyncio.create_task(at_deadline(), name="switchboard-realtime-deadline")
