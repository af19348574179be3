"""`check_listening`: each address `serve` and `dev` will listen on, bound and let go before
anything starts, as the server that listens there later binds it."""

from __future__ import annotations

import socket

import pytest

from router_service._listening import check_listening
from router_service.errors import ListenError


def test_a_bracketed_ipv6_host_is_checked_as_grpc_binds_it() -> None:
    """`server.host: "[::1]"` is how gRPC takes an IPv6 address (it refuses a bare `::1`): the
    check binds that address, and says only a taken port, never the brackets, is the matter."""
    with socket.socket(socket.AF_INET6) as holder:
        holder.bind(("::1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            check_listening([("server.port", "[::1]", port)])
        assert str(caught.value) == (
            f"cannot listen on [::1]:{port} (server.port): Address already in use"
        )
    with socket.socket(socket.AF_INET6) as other:
        other.bind(("::1", 0))
        free = other.getsockname()[1]
    check_listening([("server.port", "[::1]", port), ("edge.port", "::1", free)])


@pytest.mark.parametrize(
    ("router_host", "edge_host"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("127.0.0.1", "::")],
)
def test_one_port_on_one_address_for_two_keys_is_refused(router_host: str, edge_host: str) -> None:
    port = _free_port()
    with pytest.raises(ListenError) as caught:
        check_listening([("server.port", router_host, port), ("edge.port", edge_host, port)])
    assert str(caught.value) == (
        f"edge.port and server.port are both {edge_host}:{port}: give each its own port"
    )


@pytest.mark.parametrize(
    ("router_host", "edge_host"), [("[::1]", "::1"), ("::1", "[::1]"), ("[::]", "127.0.0.1")]
)
def test_one_ipv6_address_written_two_ways_is_one_address(router_host: str, edge_host: str) -> None:
    """`[::1]` and `::1` are one address, both taken since the router and the edge listen on a
    bare IPv6 host: passed as two, the edge's bind failed after the router had started."""
    port = _free_port()
    with pytest.raises(ListenError, match="give each its own port"):
        check_listening([("server.port", router_host, port), ("edge.port", edge_host, port)])


def test_one_port_on_two_addresses_of_a_multi_homed_host_is_taken() -> None:
    """Router and edge on one port, each on an address of its own (127.0.0.1 and 127.0.0.2 are
    both loopback on Linux): nothing collides, so nothing is refused."""
    port = _free_port()
    check_listening([("server.port", "127.0.0.1", port), ("edge.port", "127.0.0.2", port)])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
