"""Failed authentications, throttled: the edge's `/admin` token and the router's AdminService
keys (`AdminThrottle`), and the router's client keys on every service (`KeyThrottle`);
`config/_throttle.py` says the policies.

`refusal(address)` is asked before a token is compared: while the address, or every address
together (the admin throttle only), is past its limit, the answer is how long to wait, and the
token is not looked at (the right one could be the guess that lands). A wrong token is then
`failed`, a right admin one `succeeded` (its address's failures forgotten). Windows are fixed,
each opened by its first failure, on the injectable clock; addresses are kept in the order their
windows opened (a lockout keeps its place: it ends when its window does), so the expired ones
are dropped from the front, and at most `kept` of them (the admin throttle's `overall`). Past
`kept` the oldest window still counting goes first, a locked-out one only when every kept one
is: an attacker rotating addresses cannot grow the table, nor push a locked-out address out to
guess again. Nothing here sees a token: a refusal is logged and counted by address.

`caller_address` says which address a gRPC call is counted by: its peer's, or what a trusted
proxy's `x-forwarded-for` names.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal
from urllib.parse import unquote

from opentelemetry.metrics import Counter, NoOpMeterProvider

from router_service.clock import Clock
from router_service.config import AdminThrottleConfig, KeyThrottleConfig
from router_service.telemetry import current
from router_service.telemetry._state import SCOPE, VERSION, Telemetry

__all__ = [
    "KEY_THROTTLED",
    "AdminThrottle",
    "KeyThrottle",
    "Refusal",
    "TrustedProxies",
    "client_address",
    "peer_address",
]

log = logging.getLogger("switchboard.audit")

Surface = Literal["edge", "router"]
# The ErrorInfo reason of a router call refused because its address sent too many unknown client
# keys (`KeyThrottle`), on any service: the edge's admin routes pass it on as the caller's.
KEY_THROTTLED = "KEY_THROTTLED"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call refused unread: `retry_after_s` until it may be tried; `overall`: every address
    is refused, not only this one; `what`: the failures counted."""

    retry_after_s: float
    overall: bool
    what: str

    @property
    def message(self) -> str:
        who = "all addresses" if self.overall else "this address"
        return (
            f"Too many failed {self.what} from {who}: retry in {math.ceil(self.retry_after_s)} s."
        )


@dataclass(slots=True)
class _Window:
    ends: float
    failures: int = 0


@dataclass(frozen=True, slots=True)
class _Limits:
    per_address: int
    window_s: float
    overall: float  # math.inf: no overall limit
    kept: int  # most addresses kept


class _Throttle:
    """The windows and the table; a subclass names what it counts (`_WHAT`, its metric, its
    audit line) and reads its config into `_Limits`."""

    _WHAT: ClassVar[str]
    _NOUN: ClassVar[str]  # of its audit line
    _METRIC: ClassVar[tuple[str, str]]  # name, description
    _EVENT: ClassVar[str]

    def __init__(self, limits: _Limits, clock: Clock, surface: Surface) -> None:
        self._limits = limits
        self._clock = clock
        self._surface = surface
        # Each address's window, in the order they opened (so they end in that order, and the
        # ended ones are dropped from the front); those still counting (not past `per_address`)
        # also in `_counting`, in the same order: a lockout never reorders what ends first.
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._counting: OrderedDict[str, None] = OrderedDict()
        self._overall = _Window(ends=-math.inf)
        self._counter: tuple[Telemetry, Counter] | None = None

    def __len__(self) -> int:
        """How many addresses it keeps failures of (at most `kept`)."""
        return len(self._windows)

    def refusal(self, address: str) -> Refusal | None:
        """Whether a call from `address` is refused before its token is read."""
        now = self._clock.monotonic()
        self._forget(now)
        limits = self._limits
        if self._overall.failures >= limits.overall and self._overall.ends > now:
            return self._refused(Refusal(self._overall.ends - now, True, self._WHAT))
        window = self._windows.get(address)
        # `ends` checked too: after a reload shortened `window_s`, a window may end before one
        # opened earlier, which `_forget` (from the front) has not reached.
        if window is not None and window.failures >= limits.per_address and window.ends > now:
            self._lock(address)  # already, unless a reload lowered `per_address`
            return self._refused(Refusal(window.ends - now, False, self._WHAT))
        return None

    def failed(self, address: str, request_id: str | None = None) -> None:
        """A wrong token from `address` (asked `refusal` first), in the call its caller named
        `request_id` (its `x-request-id`, on the lockout's line when it locks out)."""
        now = self._clock.monotonic()
        limits = self._limits
        ends = now + limits.window_s
        if self._overall.ends <= now:
            self._overall = _Window(ends)
        self._overall.failures += 1
        window = self._windows.get(address)
        if window is None or window.ends <= now:
            window = self._open(address, ends)
        window.failures += 1
        if window.failures == limits.per_address:
            self._lock(address)
            log.warning(
                "%s authentication throttled: %d failures from %s; refused for %.0f s",
                self._NOUN,
                window.failures,
                address,
                window.ends - now,
                extra=self._fields(request_id, peer=address),
            )
        if self._overall.failures == limits.overall:
            log.warning(
                "%s authentication throttled for every address: %d failures; refused for %.0f s",
                self._NOUN,
                self._overall.failures,
                self._overall.ends - now,
                extra=self._fields(request_id),
            )

    def _fields(self, request_id: str | None, **fields: str) -> dict[str, str]:
        """A lockout line's fields: the request id of the call that locked out, when it had one."""
        fields.update(event=self._EVENT, surface=self._surface)
        if request_id is not None:
            fields["request_id"] = request_id
        return fields

    def succeeded(self, address: str) -> None:
        """The right token from `address`: its failures are forgotten."""
        self._windows.pop(address, None)
        self._counting.pop(address, None)

    def _open(self, address: str, ends: float) -> _Window:
        """A new window for `address` (its old one ended), room made for it: past `kept`, the
        oldest window still counting goes, a locked-out one only when all are (else rotating
        addresses would push a locked-out one out, and it could guess again)."""
        self.succeeded(address)
        while len(self) >= self._limits.kept:
            if self._counting:
                del self._windows[self._counting.popitem(last=False)[0]]
            else:
                self._windows.popitem(last=False)
        window = self._windows[address] = _Window(ends)
        self._counting[address] = None
        return window

    def _lock(self, address: str) -> None:
        self._counting.pop(address, None)

    def _forget(self, now: float) -> None:
        windows = self._windows
        while windows and next(iter(windows.values())).ends <= now:
            self._counting.pop(windows.popitem(last=False)[0], None)

    def _refused(self, refusal: Refusal) -> Refusal:
        self._refusals().add(1, self._attributes(refusal))
        return refusal

    def _attributes(self, refusal: Refusal) -> dict[str, str]:
        return {"scope": "overall" if refusal.overall else "address"}

    def _refusals(self) -> Counter:
        # The telemetry of the moment (tests install their own): built once per one.
        telemetry = current()
        if self._counter is None or self._counter[0] is not telemetry:
            meters = telemetry.meter_provider or NoOpMeterProvider()
            name, description = self._METRIC
            counter = meters.get_meter(SCOPE, VERSION).create_counter(
                name, unit="{call}", description=description
            )
            self._counter = (telemetry, counter)
        return self._counter[1]


class AdminThrottle(_Throttle):
    """Wrong admin tokens: per address and overall (`AdminThrottleConfig`)."""

    _WHAT = "admin authentications"
    _NOUN = "admin"
    _METRIC = (
        "switchboard.admin.auth.refusals",
        "Admin calls refused unread after too many failed authentications, by surface (edge, "
        "router) and scope (address, overall).",
    )
    _EVENT = "admin_throttle"

    def __init__(self, config: AdminThrottleConfig, clock: Clock, surface: Surface) -> None:
        super().__init__(self._read(config), clock, surface)

    def configure(self, config: AdminThrottleConfig) -> None:
        """Limits from a reloaded config; the failures counted so far stay."""
        self._limits = self._read(config)

    @staticmethod
    def _read(config: AdminThrottleConfig) -> _Limits:
        return _Limits(config.per_address, config.window_s, config.overall, config.overall)

    def _attributes(self, refusal: Refusal) -> dict[str, str]:
        return {"surface": self._surface, **super()._attributes(refusal)}


class KeyThrottle(_Throttle):
    """Wrong client keys on every router service: per address only (`KeyThrottleConfig`)."""

    _WHAT = "authentications"
    _NOUN = "key"
    _METRIC = (
        "switchboard.auth.key.refusals",
        "Router calls refused unread after too many wrong client keys from their address.",
    )
    _EVENT = "key_throttle"

    def __init__(self, config: KeyThrottleConfig, clock: Clock) -> None:
        super().__init__(self._read(config), clock, "router")

    def configure(self, config: KeyThrottleConfig) -> None:
        """Limits from a reloaded config; the failures counted so far stay."""
        self._limits = self._read(config)

    @staticmethod
    def _read(config: KeyThrottleConfig) -> _Limits:
        return _Limits(config.per_address, config.window_s, math.inf, config.addresses)


def client_address(host: str | None) -> str:
    """What failures are counted by: an IP address as written (without a port a proxy wrote
    beside it), an IPv6 one by its /64 (one host's usual share), anything else (a Unix socket,
    none) as it is."""
    if not host:
        return "unknown"
    address = _ip(host)
    if address is None:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a dual-stack socket's IPv4 caller
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `host` writes, bare, in brackets, or with a port (`203.0.113.7:41000`,
    `[2001:db8::7]:443`: some proxies' X-Forwarded-For, which uvicorn keeps as the host, a fresh
    one per connection); None for anything else."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    bare, colon, port = host.rpartition(":")
    if not (colon and port.isdigit()):
        return None
    try:
        return ipaddress.ip_address(bare.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def peer_address(peer: str) -> str:
    """`client_address` of a gRPC peer (`ipv4:10.0.0.5:53211`, `ipv6:%5B2001:db8::1%5D:53211`):
    without its port, which every connection has its own of."""
    return client_address(_peer_host(peer))


def _peer_host(peer: str) -> str:
    """A gRPC peer's host: gRPC writes a peer as a URI, an IPv6 one's brackets (and a zone's
    `%`) percent-encoded; anything else (`unix:/path`, an in-process call's) as it is."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return unquote(rest).rpartition(":")[0]
    return peer


# What `peer()` says of a call in the router's own process (clients/_local_context.py): the
# edge of `switchboard serve`, which names its caller as an edge on the wire does.
_IN_PROCESS = "in-process"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# Untrusted peers warned of, at most, per `TrustedProxies` (a reload makes a new one).
WARNED_PEERS = 64


class TrustedProxies:
    """The peers whose `x-forwarded-for` names the caller (`auth.trusted_proxies`), as uvicorn
    reads FORWARDED_ALLOW_IPS: the right-most hop not trusted is the caller (the hops left of
    it are the caller's own words), the left-most when every hop is trusted.

    Another peer's `x-forwarded-for` is ignored, with one WARNING per peer (the first
    `WARNED_PEERS`): an edge on another host, or behind a proxy not listed, would otherwise
    silently make all its callers one address, and one guesser lock the rest out. Read only
    when an address is (a wrong key, an admin call, while any failure is kept): no work on the
    common call, and the warning comes with the first wrong key, before any lockout."""

    def __init__(self, networks: Iterable[_Network]) -> None:
        self._networks = tuple(networks)
        self._warned: set[str] = set()

    def caller_address(self, peer: str, forwarded_for: str | None) -> str:
        """The `client_address` a call is counted by."""
        host = _peer_host(peer)
        if not forwarded_for:
            return client_address(host)
        if peer == _IN_PROCESS or self._trusts(host):
            hops = [hop for hop in (part.strip() for part in forwarded_for.split(",")) if hop]
            for hop in reversed(hops):
                if not self._trusts(hop):
                    return client_address(hop)
            if hops:
                return client_address(hops[0])
        elif host not in self._warned and len(self._warned) < WARNED_PEERS:
            self._warned.add(host)
            # The caller's words ride as a field (quoted by the formatters), never the message.
            log.warning(
                "x-forwarded-for from %s ignored: it is not in auth.trusted_proxies, so every "
                "caller it forwards counts as that one address (one's wrong keys lock out all, "
                "auth.key_throttle); list it there if it is an edge or a proxy of yours",
                host,
                extra={
                    "event": "untrusted_forwarder",
                    "peer": host,
                    "forwarded_for": forwarded_for,
                },
            )
        return client_address(host)

    def _trusts(self, host: str) -> bool:
        address = _ip(host)
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)
