"""The router's readiness, by the standard gRPC health check (`grpc.health.v1.Health/Check`).

`RouterClient` does not expose its channel nor a health call, so the edge keeps small channels
to the same target for probes only (with the router in its process, `switchboard serve`, an
in-process `LocalChannel` of its own): one per router address when the target lists several
(`ipv4:a:p,b:p`, as `RouterClient` joins `edge.router_target`'s list), since the edge serves
while any of them does (its calls go to the ones that serve). The router's answer carries its
authentication mode in the trailing metadata (`switchboard-auth: open | keys`), which `/readyz`
shows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import MAX_RECONNECT_BACKOFF_MS

__all__ = ["RouterHealth"]

log = logging.getLogger("switchboard.edge")


_AUTH_MODE_METADATA = "switchboard-auth"
# A router back is found within seconds, as the edge's client finds it (`clients.channel_options`).
_OPTIONS = [("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS)]

# What one probe learnt: why the router does not serve (None: it serves), and its auth mode.
_Probe = tuple[str | None, str | None]


def _each_address(target: str) -> list[str]:
    """The targets probed one by one: each address of a static list, else the target itself (a
    DNS name's addresses are the resolver's: probed as one)."""
    scheme, sep, addresses = target.partition(":")
    if sep and scheme in ("ipv4", "ipv6") and "," in addresses:
        return [f"{scheme}:{address}" for address in addresses.split(",")]
    return [target]


class RouterHealth:
    """Asks the routers whether they serve; channels open on first use, close by `aclose`."""

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None = None,
        *,
        channel: Any = None,
    ) -> None:
        """`channel`: the one to probe through (an in-process `LocalChannel`), owned and closed
        by this; else channels to each of `target`'s addresses."""
        self._targets = [target] if channel is not None else _each_address(target)
        self._credentials = credentials
        self._channels: dict[str, Any] = {} if channel is None else {target: channel}
        self._closed = False
        self._failed: dict[str, str] = {}  # target: its failure's gRPC detail, as last logged
        # The router's `switchboard-auth` as of the last check: "open", "keys", or None (unknown).
        self.auth_mode: str | None = None

    async def check(self, timeout: float) -> str | None:  # noqa: ASYNC109 - the gRPC deadline
        """None when a router (one of them, when there are several) is serving, else why none
        is: for anyone who asks `/readyz`, so each router by its place in the target (`router
        2`) and its gRPC status, not its address nor gRPC's text (logged, `_probe`)."""
        if self._closed:
            return "the edge is shutting down"
        probes = await asyncio.gather(*(self._probe(t, timeout) for t in self._targets))
        serving = [mode for reason, mode in probes if reason is None]
        # A serving router's mode first; one that does not serve still says how it would be.
        modes = [*serving, *(mode for _, mode in probes)]
        self.auth_mode = next((mode for mode in modes if mode is not None), None)
        if serving:
            return None
        if len(probes) == 1:
            return probes[0][0]
        why = (f"router {place}: {reason}" for place, (reason, _) in enumerate(probes, 1))
        return "; ".join(why)

    async def _probe(self, target: str, timeout: float) -> _Probe:  # noqa: ASYNC109
        stub = health_pb2_grpc.HealthStub(self._channel(target))
        try:
            call = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            response = await call
            trailers = await call.trailing_metadata()
        except grpc.RpcError as exc:
            detail = f"{exc.code().name}: {exc.details()}"
            if self._failed.get(target) != detail:  # once per change, not once per probe
                log.warning("router health check of %s failed: %s", target, detail)
                self._failed[target] = detail
            return f"router health check failed: {exc.code().name}", None
        self._failed.pop(target, None)
        mode = next(
            (str(value) for key, value in trailers or () if key == _AUTH_MODE_METADATA), None
        )
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            return f"router is not serving ({name})", mode
        return None, mode

    def _channel(self, target: str) -> Any:
        channel = self._channels.get(target)
        if channel is None:
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(target, options=_OPTIONS)
            else:
                channel = grpc.aio.secure_channel(target, self._credentials, options=_OPTIONS)
            self._channels[target] = channel
        return channel

    async def use_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """Probe with `credentials` from the next check on (a rotated client certificate)."""
        self._credentials = credentials
        channels, self._channels = self._channels, {}
        # A check under way finishes.
        await asyncio.gather(*(channel.close(grace=5.0) for channel in channels.values()))

    async def aclose(self) -> None:
        """Close the probe channels; idempotent."""
        self._closed = True
        channels, self._channels = self._channels, {}
        await asyncio.gather(*(channel.close() for channel in channels.values()))
