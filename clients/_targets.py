"""Where the router is: the one gRPC target a client's channel uses, from one address or
several, refused when it could only reach something else."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence

import grpc

from clients.errors import ErrorDetails, RouterError

__all__ = [
    "RELOOKUP_S",
    "Lookup",
    "RouterTarget",
    "channel_target",
    "checked_target",
    "static_target",
    "system_lookup",
]

_LAST_PORT = 65_535
# Schemes of URLs, which gRPC has no resolver for (it calls `dns:///http://host:port`, no such
# name): an HTTP habit, a Kubernetes service's URL. Not `dns:`, `xds:` and gRPC's other own.
_URL_SCHEMES = ("http", "https", "grpc", "grpcs", "h2", "h2c", "tcp")


# How often, at most, a client looks its router names up again after a call found none of
# their addresses reachable: often enough to follow replicas that moved (pods rescheduled)
# within seconds, seldom enough that a router down for long costs no DNS query per call.
RELOOKUP_S = 5.0

# The IP addresses of a host name (`port`: the one they are dialled on); blocking.
Lookup = Callable[[str, int], Sequence[str]]


def system_lookup(host: str, port: int) -> list[str]:
    """The host's addresses, from the system's resolver (`socket.getaddrinfo`)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class RouterTarget:
    """A client's router addresses and the gRPC target made of them: at once when it needs no
    lookup, else (a list naming hosts) at first use, by `looked_up` (blocking: the blocking
    client) or `look_up` (in a thread: the async one, which must not stall its event loop).

    A list naming hosts is a static `ipv4:`/`ipv6:` target gRPC never looks up again, so the
    clients call `relooked_up` when a call could reach none of its addresses: replicas that
    moved are found again, at most every `relookup_s` seconds of `clock`. Give a client one
    (`RouterClient(RouterTarget([...], lookup=...))`) for a resolver of your own (`lookup`:
    a host name and port to its IP addresses; a name it cannot look up raises `OSError`)."""

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        lookup: Lookup = system_lookup,
        clock: Callable[[], float] = time.monotonic,
        relookup_s: float = RELOOKUP_S,
    ) -> None:
        self.given = (target,) if isinstance(target, str) else tuple(target)
        self.target = static_target(target)  # None: its names are looked up at first use
        self.named = self.target is None  # host names to look up: again when they fail
        self._lookup = lookup
        self._clock = clock
        self._relookup_s = relookup_s
        self._looked_up_at = -math.inf
        self._relooking = threading.Lock()  # threads of a blocking client failing at once

    @property
    def shown(self) -> str:
        """The target, or the addresses as given while their names are not looked up yet."""
        return self.target or ",".join(self.given)

    def looked_up(self) -> str:
        """The target, looking its names up here on first need; a failed lookup is tried
        again at the next (a `RouterError` UNAVAILABLE naming the address)."""
        if self.target is None:
            self.target = self._resolved()
        return self.target

    async def look_up(self) -> None:
        """`looked_up` in a thread, off the event loop (a slow DNS stalled every task)."""
        if self.target is None:
            target = await asyncio.to_thread(self._resolved)
            self.target = self.target or target

    def due(self) -> bool:
        """Whether `relooked_up` would look up now: names, not looked up in `relookup_s`."""
        return self.named and self._clock() - self._looked_up_at >= self._relookup_s

    def relooked_up(self) -> bool:
        """Look the names up again (blocking; when `due`, and not while another thread does):
        whether they now give other addresses, which `target` is from now on. A failed lookup
        keeps the addresses there are (the call's own error says what failed)."""
        if not self._relooking.acquire(blocking=False):
            return False  # another failed call of the client's is at it
        try:
            if not self.due():
                return False
            target = self._resolved()
            changed, self.target = target != self.target, target
            return changed
        except (RouterError, ValueError):  # no such name now, or no family shared
            return False
        finally:
            self._relooking.release()

    def _resolved(self) -> str:
        self._looked_up_at = self._clock()  # a failed lookup counts too: no query per call
        return channel_target(self.given, self._lookup)


def static_target(target: str | Sequence[str]) -> str | None:
    """`target` checked, as `channel_target` makes it when no lookup is needed; None for a
    list naming a host (`router-a:50051`), which `channel_target` looks up: blocking, so a
    client does it at first use (the async client in a thread), never when it is made."""
    if isinstance(target, str):
        return checked_target(target)
    if not target:
        raise ValueError("at least one router target is required")
    if len(target) == 1:
        return checked_target(target[0])
    for address in target:
        checked_target(address)
        _host_port(address)
    if all(_literal(address) for address in target):
        return channel_target(target)
    return None


def channel_target(target: str | Sequence[str], lookup: Lookup = system_lookup) -> str:
    """One gRPC target for one or several router addresses.

    A string is used as it is (``dns:///router:50051`` resolves to every replica). Several
    ``host:port`` addresses become one static ``ipv4:``/``ipv6:`` target; host names among them
    are looked up here (blocking), once, because a static list cannot be re-resolved later. A
    name that cannot be is a `RouterError` UNAVAILABLE naming it, as gRPC's own for one name.
    """
    if isinstance(target, str) or len(target) < 2:
        checked = static_target(target)
        assert checked is not None  # one address is gRPC's to resolve
        return checked
    for address in target:
        checked_target(address)
    resolved = [_resolve(address, lookup) for address in target]
    for family, scheme in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        if all(any(fam == family for fam, _ in addrs) for addrs in resolved):
            picked: list[str] = []
            for addrs in resolved:
                picked.extend(a for fam, a in addrs if fam == family and a not in picked)
            return f"{scheme}:{','.join(picked)}"
    raise ValueError(f"router targets {list(target)!r} share no address family")


def checked_target(target: str) -> str:
    """`target`, unless one of its addresses ends in a port past 65535: grpc takes it modulo
    65536 (`127.0.0.1:70000` calls port 4464), so a typo would reach whatever listens there;
    or is an IPv6 address out of brackets (`_unbracketed`) or in one left open, or a URL
    (`_a_url`); or when it is empty, or names a user or password."""
    if not target:
        raise ValueError("a router target is required (host:port)")
    if target.startswith(("unix:", "unix-abstract:", "vsock:")):
        return target
    if "@" in target:  # refused before any error quotes it: a password may be there
        raise ValueError(
            "a router target has no user or password (`user:password@host`): the key goes "
            "in the `authorization` metadata, not in the address"
        )
    for address in _addresses(target):
        if address.partition("://")[0].lower() in _URL_SCHEMES:
            raise ValueError(_a_url(target, address))
        if address.startswith("[") and "]" not in address:  # else a resolver error at the call
            raise ValueError(
                f"router target {target!r}: {address!r} opens a bracket it never closes"
            )
        if not address.startswith("[") and address.count(":") > 1:
            raise ValueError(_unbracketed(target, address))
        port = address.rpartition(":")[2]
        if port.isdigit() and int(port) > _LAST_PORT:
            raise ValueError(f"router target {target!r}: port {port} is past {_LAST_PORT}")
    return target


def _addresses(target: str) -> list[str]:
    """The `host:port` addresses of `target`: after its scheme (`dns:`, `ipv4:`, `ipv6:`) and a
    DNS authority (`dns://8.8.8.8/router:50051`), split at the commas."""
    rest = target
    for scheme in ("dns:", "ipv4:", "ipv6:"):
        if rest.startswith(scheme):
            rest = rest.removeprefix(scheme)
            if rest.startswith("//"):
                rest = rest[2:].partition("/")[2]
            break
    return rest.split(",")


def _a_url(target: str, address: str) -> str:
    """Why a URL is refused, naming the `host:port` meant (it was said to be an IPv6 address
    out of brackets, `[http://host:port]:PORT`)."""
    host_port = address.partition("://")[2].partition("/")[0]
    port = host_port.rpartition(":")[2] if not host_port.endswith("]") else ""
    meant = host_port if port.isdigit() else f"{host_port}:PORT"
    return (
        f"router target {target!r} is a URL: gRPC takes host:port, write {meant!r} (TLS "
        "comes from the client's credentials, the edge's router_tls, not from a scheme)"
    )


def _unbracketed(target: str, address: str) -> str:
    """Why a bare IPv6 address is refused: gRPC takes all of it as the host, port 443 (`::1`
    calls port 443; `::1:50051` is no address at all), where `[::1]:50051` was meant."""
    host, _, port = address.rpartition(":")
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        meant = f"[{address}]:PORT"
    else:
        meant = f"[{host}]:{port}" if port.isdigit() else f"[{address}]:PORT"
    return (
        f"router target {target!r}: an IPv6 address needs brackets (gRPC reads a bare one, "
        f"port and all, as the host, on port 443); write {meant!r}"
    )


def _host_port(address: str) -> tuple[str, str]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        raise ValueError(f"a router target in a list must be host:port, not {address!r}")
    return host.removeprefix("[").removesuffix("]"), port


def _resolve(address: str, lookup: Lookup) -> list[tuple[socket.AddressFamily, str]]:
    host, port = _host_port(address)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            ips = [ipaddress.ip_address(found) for found in lookup(host, int(port))]
        except OSError as exc:  # socket.gaierror: no such name, or no DNS answer
            raise RouterError(_unresolved(address, exc)) from exc
    else:
        ips = [ip]
    return [_formatted(ip, port) for ip in ips]


def _literal(address: str) -> bool:
    """Whether `address` is an IP address and a port: nothing to look up."""
    try:
        host = _host_port(address)[0]
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _unresolved(address: str, exc: OSError) -> ErrorDetails:
    """A router address whose name could not be looked up: UNAVAILABLE, as gRPC's own failed
    lookup of a single target's name, tried again at the next call."""
    return ErrorDetails(
        code=grpc.StatusCode.UNAVAILABLE,
        message=f"router target {address!r}: its host name could not be resolved ({exc})",
        reason="UNAVAILABLE",
        bare=True,
    )


def _formatted(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: str
) -> tuple[socket.AddressFamily, str]:
    if ip.version == 4:
        return socket.AF_INET, f"{ip}:{port}"
    return socket.AF_INET6, f"[{ip}]:{port}"
