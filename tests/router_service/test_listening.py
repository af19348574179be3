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
