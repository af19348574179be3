"""Channel target, options and per-call metadata of the clients."""

from __future__ import annotations

import json

import grpc
import pytest

from clients import IDEMPOTENT_METHODS, USE_CLIENT_DEFAULT, RouterClient, SyncRouterClient
from clients._base import channel_options, resolve_timeout
from clients._metadata import call_metadata
from clients._targets import channel_target
from clients.switchboard.v1 import admin_service_pb2, router_service_pb2


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("dns:///router.internal:50051", "dns:///router.internal:50051"),
        (["10.0.0.1:50051"], "10.0.0.1:50051"),
        (["10.0.0.1:50051", "10.0.0.2:50052"], "ipv4:10.0.0.1:50051,10.0.0.2:50052"),
        (["[::1]:1", "[fe80::2]:2"], "ipv6:[::1]:1,[fe80::2]:2"),
        (["10.0.0.1:1", "10.0.0.1:1"], "ipv4:10.0.0.1:1"),
    ],
)
def test_channel_target(target: str | list[str], expected: str) -> None:
    assert channel_target(target) == expected


def test_host_names_in_a_list_are_resolved() -> None:
    target = channel_target(["localhost:7001", "127.0.0.1:7002"])
    assert target.startswith("ipv4:")
    assert "127.0.0.1:7001" in target and "127.0.0.1:7002" in target


@pytest.mark.parametrize(
    "target", [[], ["dns:///a:1", "b:2"], ["a", "b:1"], ["10.0.0.1:1", "[::1]:2"]]
)
def test_bad_target_lists(target: list[str]) -> None:
    with pytest.raises(ValueError, match="target"):
        channel_target(target)


@pytest.mark.parametrize(
    "target",
    ["10.0.0.1:70000", "dns:///router:65536", "ipv4:10.0.0.1:1,10.0.0.2:99999", ["a:1", "b:70000"]],
)
def test_a_port_past_65535_is_refused_not_wrapped(target: str | list[str]) -> None:
    with pytest.raises(ValueError, match="is past 65535"):
        RouterClient(target)


def test_an_empty_target_is_refused() -> None:
    with pytest.raises(ValueError, match="target is required"):
        RouterClient("")


@pytest.mark.parametrize("target", ["[::1]:65535", "unix:/run/router:70000", "dns:///router"])
def test_targets_without_a_port_past_65535_stand(target: str) -> None:
    assert channel_target(target) == target


def test_channel_options_defaults_and_overrides() -> None:
    options = dict(channel_options(1024, [("grpc.keepalive_time_ms", 60_000), ("grpc.x", "y")]))
    service_config = json.loads(options.pop("grpc.service_config"))
    (method,) = service_config["methodConfig"]
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert all("method" in name for name in method["name"])  # no whole service is retried
    assert {"service": "grpc.health.v1.Health"} not in method["name"]
    assert options == {
        "grpc.lb_policy_name": "round_robin",
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 10_000,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.max_pings_without_data": 0,
        "grpc.max_reconnect_backoff_ms": 2_000,
        "grpc.max_send_message_length": 1024,
        # Answers are not held to the request limit (an embedding batch).
        "grpc.max_receive_message_length": 128 * 1024 * 1024,
        # An answer's metadata: no refusal at random past grpc's 8 KiB soft limit.
        "grpc.max_metadata_size": 16 * 1024,
        "grpc.absolute_max_metadata_size": 16 * 1024,
        "grpc.x": "y",
    }


def test_the_methods_retried_are_reads_the_services_have() -> None:
    """A misspelt name would silently not be retried; a write would be run twice."""
    services = {
        service.full_name: service
        for module in (admin_service_pb2, router_service_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
    }
    for service, methods in IDEMPOTENT_METHODS.items():
        assert set(methods) <= set(services[service].methods_by_name), service
        assert all(m.startswith(("List", "Get", "Load", "Resume")) for m in methods), service


def test_default_message_limit_is_16_mib() -> None:
    options = dict(channel_options(16 * 1024 * 1024, ()))
    client = SyncRouterClient("localhost:1")
    assert dict(client._options) == options
    client.close()


def test_call_metadata() -> None:
    assert call_metadata(None, None) == ()
    assert call_metadata("k", None) == (("authorization", "Bearer k"),)
    assert call_metadata("k", [("x-a", "1")]) == (("x-a", "1"), ("authorization", "Bearer k"))
    caller = [("Authorization", "Bearer caller")]
    assert call_metadata("k", caller) == (("authorization", "Bearer caller"),)  # as gRPC sends


def test_timeouts() -> None:
    assert resolve_timeout(USE_CLIENT_DEFAULT, 30.0) == 30.0
    assert resolve_timeout(None, 30.0) is None
    assert resolve_timeout(2.5, 30.0) == 2.5


def test_constructing_needs_no_event_loop() -> None:
    """The aio channel is made on open, inside the loop; constructing is plain Python."""
    client = RouterClient(["127.0.0.1:1", "127.0.0.1:2"], api_key="k", default_timeout=3)
    assert client.target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert not client.is_closed


@pytest.mark.parametrize(
    ("target", "meant"),
    [
        ("::1:50051", "[::1]:50051"),
        ("::1", "[::1]:PORT"),
        ("fe80::2:7001", "[fe80::2]:7001"),
        ("dns:///::1:50051", "[::1]:50051"),
        ("ipv6:::1:1,[::2]:2", "[::1]:1"),
        (["[::1]:1", "::2:2"], "[::2]:2"),
    ],
)
def test_a_bare_ipv6_address_is_refused_with_its_bracketed_form(
    target: str | list[str], meant: str
) -> None:
    """gRPC reads `::1:50051` as a host (no such name) and `::1` as port 443 of it: neither
    calls the router meant; the error shows how to write it."""
    with pytest.raises(ValueError, match="IPv6 address needs brackets") as refused:
        RouterClient(target)
    assert repr(meant) in str(refused.value)


@pytest.mark.parametrize("target", ["[::1", "[::1:50051", "ipv6:[::1]:1,[::2"])
def test_a_bracket_left_open_is_refused(target: str) -> None:
    # Else a resolver's error at the first call ("Unparsable name"), or the CLI's exit 1.
    with pytest.raises(ValueError, match="opens a bracket it never closes"):
        RouterClient(target)


@pytest.mark.parametrize("target", ["[::1]:50051", "ipv6:[::1]:1,[fe80::2]:2", "dns:///[::1]:1"])
def test_a_bracketed_ipv6_address_stands(target: str) -> None:
    assert channel_target(target) == target


@pytest.mark.parametrize(
    "target", ["admin:s3cretpw@router:50051", "s3cretpw@10.0.0.1:50051", "h:1,u:s3cretpw@h:2"]
)
def test_credentials_in_a_target_are_refused_without_repeating_them(target: str) -> None:
    # gRPC has no user:password@ in a target (the key goes in `authorization`); the error
    # said "an IPv6 address needs brackets" and quoted the password (into a config error, a
    # reload_error that GetServerInfo shows every admin).
    with pytest.raises(ValueError, match="no user or password") as refused:
        RouterClient(target)
    assert "s3cretpw" not in str(refused.value)


@pytest.mark.parametrize(
    ("target", "meant"),
    [
        ("http://127.0.0.1:50051", "127.0.0.1:50051"),
        ("https://router.internal:443/", "router.internal:443"),
        ("grpc://router:50051", "router:50051"),
        ("http://router", "router:PORT"),
        ("dns:///http://router:50051", "router:50051"),
        (["10.0.0.1:50051", "http://10.0.0.2:50051"], "10.0.0.2:50051"),
    ],
)
def test_a_url_is_refused_naming_the_address_meant(target: str | list[str], meant: str) -> None:
    # A URL (an HTTP habit, a Kubernetes service's) was said to be an IPv6 address out of
    # brackets, to be written '[http://127.0.0.1:50051]:PORT'; gRPC cannot call it either way.
    with pytest.raises(ValueError, match="is a URL") as refused:
        RouterClient(target)
    assert repr(meant) in str(refused.value)
    assert "IPv6" not in str(refused.value)


async def test_metadata_given_as_a_dict_is_sent_as_its_pairs() -> None:
    # A dict was iterated as its keys: `{"x-session-id": "s1"}` failed with "too many values
    # to unpack", and a two-letter key was cut into a pair (`{"ab": "cd"}` sent `a: b`).
    server = grpc.aio.server()
    seen: list[tuple[tuple[str, str], ...]] = []

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen.append(tuple((k, v) for k, v in context.invocation_metadata() if k[0] in "ax"))
        return request

    handlers = {"ListModels": grpc.unary_unary_rpc_method_handler(echo)}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("switchboard.v1.RouterService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with RouterClient(f"127.0.0.1:{port}", api_key="k") as client:
            await client.list_models(metadata={"x-session-id": "s1", "ab": "cd"}, timeout=10)
    finally:
        await server.stop(0)
    assert seen == [(("x-session-id", "s1"), ("ab", "cd"), ("authorization", "Bearer k"))]
