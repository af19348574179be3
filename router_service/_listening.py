"""Whether a process can listen everywhere it must, checked before it starts anything
(`switchboard router`, `edge`, `serve` and `dev`: a port taken is one line naming it, and nothing
left running)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from router_service.errors import ListenError

__all__ = ["Listening", "check_listening", "grpc_host", "port_clash", "socket_host"]

# Where a process listens: the config key (or flag) that sets it, the host, the port.
Listening = tuple[str, str, int]


def check_listening(wanted: Sequence[Listening]) -> None:
    """Bind each address of `wanted` and let it go again; a `ListenError` naming the address
    and its key for the first that cannot be bound, or for a port two keys share. Port 0 (any
    free port) is not checked. What binds the address later binds it as this check did
    (`SO_REUSEADDR`, as uvicorn, grpc and the metrics listener do): a port some other process
    listens on fails here, one whose last connections linger in TIME_WAIT does not."""
    shared = port_clash(wanted)
    if shared is not None:
        (key, host, port), (other_key, _, _) = shared
        raise ListenError(f"{key} and {other_key} are both {host}:{port}: give each its own port")
    for key, host, port in wanted:
        if port:
            _bind(key, host, port)


def port_clash(wanted: Sequence[Listening]) -> tuple[Listening, Listening] | None:
    """The first listener of `wanted` on a port an earlier one has (on an overlapping host),
    with that earlier one; None when each has its own. Port 0 (any free port) clashes with
    nothing."""
    seen: list[Listening] = []
    for key, host, port in wanted:
        if not port:
            continue
        for other in seen:
            if port == other[2] and _overlap(host, other[1]):
                return (key, host, port), other
        seen.append((key, host, port))
    return None


# The hosts (as `socket_host` writes them) that listen on every address of their family (and,
# for IPv6's, usually IPv4's).
_EVERYWHERE = frozenset({"0.0.0.0", "::"})


def _overlap(host: str, other: str) -> bool:
    """Whether two listeners on one port would collide: the same host (`[::1]` and `::1` are
    one), or either everywhere (a multi-homed host may give router and edge one port on two of
    its addresses)."""
    host, other = socket_host(host), socket_host(other)
    return host == other or host in _EVERYWHERE or other in _EVERYWHERE


def socket_host(host: str) -> str:
    """A listening host as a socket (the resolver) takes it: an IPv6 address bare, without the
    brackets gRPC's addresses need (`server.host: "[::1]"`); none (`""`) is every IPv4 address."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bare or "0.0.0.0"


def grpc_host(host: str) -> str:
    """A listening host as gRPC's address takes it: an IPv6 address bracketed (`::`, `::1` as a
    socket takes them), or its `:` would be read as the port's."""
    bare = socket_host(host)
    return f"[{bare}]" if ":" in bare else bare


def _bind(key: str, host: str, port: int) -> None:
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            socket_host(host), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ListenError(
            f"cannot listen on {host}:{port} ({key}): {exc.strerror or exc}"
        ) from None
