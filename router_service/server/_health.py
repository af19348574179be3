"""The standard `grpc.health.v1` service, counting the clients that watch it.

A stopping router goes NOT_SERVING first. Clients that watch its health (client-side health
checking: `RouterClient`, the edge, any gRPC client with `healthCheckConfig`) then stop sending
it calls, and the router waits `server.drain_delay_s` for that before it takes no new calls;
with no one watching there is no one to wait for. Counting the Watch streams here keeps that
decision off the library's private state.
"""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2

__all__ = ["WatchedHealth"]


class WatchedHealth(health.aio.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """grpc's asyncio health servicer; `watchers` is the number of Watch streams open now."""

    def __init__(self) -> None:
        super().__init__()
        self.watchers = 0

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: object) -> None:
        self.watchers += 1
        try:
            await super().Watch(request, context)
        finally:
            self.watchers -= 1
