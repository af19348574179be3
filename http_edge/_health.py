"""The router's readiness, by the standard gRPC health check (`grpc.health.v1.Health/Check`).

`RouterClient` does not expose its channel nor a health call, so the edge keeps a second, small
channel to the same target for probes only. The router's answer carries its authentication mode
in the trailing metadata (`switchboard-auth: open | keys`), which `/readyz` shows.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["RouterHealth"]


_AUTH_MODE_METADATA = "switchboard-auth"


class RouterHealth:
    """Asks the router whether it serves; the channel opens on first use, closes by `aclose`."""

    def __init__(self, target: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        self._target = target
        self._credentials = credentials
        self._channel: Any = None
        self._closed = False
        # The router's `switchboard-auth` as of the last check: "open", "keys", or None (unknown).
        self.auth_mode: str | None = None

    async def check(self, timeout: float) -> str | None:  # noqa: ASYNC109 - the gRPC deadline
        """None when the router is serving, else why it is not."""
        if self._closed:
            return "the edge is shutting down"
        if self._channel is None:
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(self._target)
            else:
                self._channel = grpc.aio.secure_channel(self._target, self._credentials)
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            call = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            response = await call
            trailers = await call.trailing_metadata()
        except grpc.RpcError as exc:
            return f"router health check failed: {exc.code().name}: {exc.details()}"
        self.auth_mode = next(
            (str(value) for key, value in trailers or () if key == _AUTH_MODE_METADATA), None
        )
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            return f"router is not serving ({name})"
        return None

    async def use_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """Probe with `credentials` from the next check on (a rotated client certificate)."""
        self._credentials = credentials
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close(grace=5.0)  # a check under way finishes

    async def aclose(self) -> None:
        """Close the probe channel; idempotent."""
        self._closed = True
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()
