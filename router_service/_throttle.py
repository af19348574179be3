"""Failed admin authentications, throttled: the edge's `/admin` token and the router's
AdminService keys (`config/_throttle.py` says the policy).

`refusal(address)` is asked before a token is compared: while the address, or every address
together, is past its limit, the answer is how long to wait, and the token is not looked at (the
right one could be the guess that lands). A wrong token is then `failed`, a right one `succeeded`
(its address's failures forgotten). Windows are fixed, each opened by its first failure, on the
injectable clock; addresses are kept in the order their windows opened, so the expired ones are
dropped from the front, and at most `overall` of them: while the overall limit is reached no
failure is counted (every attempt is refused first), so an attacker rotating addresses cannot
grow the table past it. Nothing here sees a token: a refusal is logged and counted by address.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from opentelemetry.metrics import Counter, NoOpMeterProvider

from router_service.clock import Clock
from router_service.config import AdminThrottleConfig
from router_service.telemetry import current
from router_service.telemetry._state import SCOPE, VERSION, Telemetry

__all__ = ["AdminThrottle", "Refusal", "client_address", "peer_address"]

log = logging.getLogger("switchboard.audit")

Surface = Literal["edge", "router"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An admin call refused unread: `retry_after_s` until it may be tried; `overall`: every
    address is refused, not only this one."""

    retry_after_s: float
    overall: bool

    @property
    def message(self) -> str:
        who = "all addresses" if self.overall else "this address"
        return (
            f"Too many failed admin authentications from {who}: retry in "
            f"{math.ceil(self.retry_after_s)} s."
        )


@dataclass(slots=True)
class _Window:
    ends: float
    failures: int = 0


class AdminThrottle:
    def __init__(self, config: AdminThrottleConfig, clock: Clock, surface: Surface) -> None:
        self._config = config
        self._clock = clock
        self._surface = surface
        self._addresses: OrderedDict[str, _Window] = OrderedDict()
        self._overall = _Window(ends=-math.inf)
        self._counter: tuple[Telemetry, Counter] | None = None

    def configure(self, config: AdminThrottleConfig) -> None:
        """Limits from a reloaded config; the failures counted so far stay."""
        self._config = config

    def __len__(self) -> int:
        """How many addresses it keeps failures of (at most `overall`)."""
        return len(self._addresses)

    def refusal(self, address: str) -> Refusal | None:
        """Whether an admin call from `address` is refused before its token is read."""
        now = self._clock.monotonic()
        self._forget(now)
        if self._overall.failures >= self._config.overall and self._overall.ends > now:
            return self._refused(address, Refusal(self._overall.ends - now, overall=True))
        window = self._addresses.get(address)
        # `ends` checked too: after a reload shortened `window_s`, a window may end before one
        # opened earlier, which `_forget` (from the front) has not reached.
        if window is not None and window.failures >= self._config.per_address and window.ends > now:
            return self._refused(address, Refusal(window.ends - now, overall=False))
        return None

    def failed(self, address: str) -> None:
        """A wrong or missing token from `address` (asked `refusal` first)."""
        now = self._clock.monotonic()
        ends = now + self._config.window_s
        if self._overall.ends <= now:
            self._overall = _Window(ends)
        self._overall.failures += 1
        window = self._addresses.get(address)
        if window is None or window.ends <= now:
            window = self._addresses[address] = _Window(ends)
            self._addresses.move_to_end(address)
            while len(self._addresses) > self._config.overall:
                self._addresses.popitem(last=False)
        window.failures += 1
        if window.failures == self._config.per_address:
            log.warning(
                "admin authentication throttled: %d failures from %s; refused for %.0f s",
                window.failures,
                address,
                window.ends - now,
                extra={"event": "admin_throttle", "surface": self._surface, "peer": address},
            )
        if self._overall.failures == self._config.overall:
            log.warning(
                "admin authentication throttled for every address: %d failures; refused for %.0f s",
                self._overall.failures,
                self._overall.ends - now,
                extra={"event": "admin_throttle", "surface": self._surface},
            )

    def succeeded(self, address: str) -> None:
        """The right token from `address`: its failures are forgotten."""
        self._addresses.pop(address, None)

    def _forget(self, now: float) -> None:
        addresses = self._addresses
        while addresses and next(iter(addresses.values())).ends <= now:
            addresses.popitem(last=False)

    def _refused(self, address: str, refusal: Refusal) -> Refusal:
        scope = "overall" if refusal.overall else "address"
        self._refusals().add(1, {"surface": self._surface, "scope": scope})
        return refusal

    def _refusals(self) -> Counter:
        # The telemetry of the moment (tests install their own): built once per one.
        telemetry = current()
        if self._counter is None or self._counter[0] is not telemetry:
            meters = telemetry.meter_provider or NoOpMeterProvider()
            counter = meters.get_meter(SCOPE, VERSION).create_counter(
                "switchboard.admin.auth.refusals",
                unit="{call}",
                description="Admin calls refused unread after too many failed authentications, "
                "by surface (edge, router) and scope (address, overall).",
            )
            self._counter = (telemetry, counter)
        return self._counter[1]


def client_address(host: str | None) -> str:
    """What failures are counted by: an IP address as written, an IPv6 one by its /64 (one
    host's usual share), anything else (a Unix socket, none) as it is."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a dual-stack socket's IPv4 caller
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def peer_address(peer: str) -> str:
    """`client_address` of a gRPC peer (`ipv4:10.0.0.5:53211`, `ipv6:%5B2001:db8::1%5D:53211`):
    without its port, which every connection has its own of. gRPC writes a peer as a URI, an
    IPv6 one's brackets (and a zone's `%`) percent-encoded."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return client_address(unquote(rest).rpartition(":")[0])
    return client_address(peer)  # `unix:/path`, an in-process call's
