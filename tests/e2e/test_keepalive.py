"""The edge's channel and the router's server agree on keepalive pings, so that a long idle
stream between them is neither cut by the router (GOAWAY "too_many_pings") nor by intermediaries
(idle timeouts of NATs and load balancers, a minute and more)."""

from __future__ import annotations

from clients._base import DEFAULT_MAX_MESSAGE_BYTES, channel_options
from router_service.config import StreamsConfig
from router_service.server._server import server_options

# The channel argument names of gRPC core (include/grpc/impl/channel_arg_names.h). A misspelled
# key is ignored silently, leaving core's defaults (a 5-minute minimum between pings) in force.
KEEPALIVE_TIME = "grpc.keepalive_time_ms"
PERMIT_WITHOUT_CALLS = "grpc.keepalive_permit_without_calls"
MIN_RECV_PING_INTERVAL = "grpc.http2.min_ping_interval_without_data_ms"
MAX_PING_STRIKES = "grpc.http2.max_ping_strikes"


def test_the_router_accepts_the_pings_the_edge_sends() -> None:
    client = dict(channel_options(DEFAULT_MAX_MESSAGE_BYTES, []))
    server = dict(server_options(DEFAULT_MAX_MESSAGE_BYTES))

    assert client[PERMIT_WITHOUT_CALLS] == server[PERMIT_WITHOUT_CALLS] == 1
    assert server[MIN_RECV_PING_INTERVAL] <= client[KEEPALIVE_TIME]
    assert server[MAX_PING_STRIKES] == 0  # a faster pinger is tolerated, not cut off
    known = {
        "grpc.max_send_message_length",
        "grpc.max_receive_message_length",
        KEEPALIVE_TIME,
        "grpc.keepalive_timeout_ms",
        PERMIT_WITHOUT_CALLS,
        MIN_RECV_PING_INTERVAL,
        MAX_PING_STRIKES,
        "grpc.so_reuseport",
        "grpc.max_metadata_size",
        "grpc.absolute_max_metadata_size",
    }
    assert set(server) <= known


def test_pings_and_heartbeats_beat_intermediaries_idle_timeouts() -> None:
    client = dict(channel_options(DEFAULT_MAX_MESSAGE_BYTES, []))
    # HTTP/2 pings keep the connection alive; heartbeat messages keep each idle stream alive
    # (and become `: keepalive` comments for HTTP proxies between the edge and its callers).
    assert client[KEEPALIVE_TIME] <= 30_000
    assert StreamsConfig().heartbeat_s <= 15
