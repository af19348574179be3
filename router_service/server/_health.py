"""The standard `grpc.health.v1` service, counting the clients that watch it and ending their
Watch streams when the router stops.

A stopping router goes NOT_SERVING first. Clients that watch its health (client-side health
checking: `RouterClient`, the edge, any gRPC client with `healthCheckConfig`) then stop sending
it calls, and the router waits `server.drain_delay_s` for that before it takes no new calls;
with no one watching there is no one to wait for. A Watch stream never ends by itself, so the
router ends them before its graceful stop, which would otherwise wait its whole grace for them.
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2

__all__ = ["WatchedHealth"]

_STOPPING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)


class WatchedHealth(health.aio.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """grpc's asyncio health servicer; `watchers` is the number of Watch streams open now."""

    def __init__(self) -> None:
        super().__init__()
        self.watchers = 0
        self._watches: set[asyncio.Future[None]] = set()
        self._ending = False

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> None:
        if self._ending:  # a client watching again after its stream ended: the router stops
            # Said before the end: a stream ended with nothing said leaves the client with the
            # last status it heard (SERVING), and its calls coming here.
            await context.write(_STOPPING)
            return
        # The library's Watch runs as its own task, so that `end_watches` can stop it while
        # this handler returns normally (the client sees the stream end with OK).
        watch = asyncio.ensure_future(super().Watch(request, context))
        self._watches.add(watch)
        self.watchers += 1
        try:
            await watch
        except asyncio.CancelledError:
            if not (self._ending and watch.cancelled()):
                raise  # the call itself was cancelled: its caller went away
        finally:
            self.watchers -= 1
            self._watches.discard(watch)

    def end_watches(self) -> None:
        """End every Watch stream open now (they have been told NOT_SERVING)."""
        self._ending = True
        for watch in self._watches:
            watch.cancel()
