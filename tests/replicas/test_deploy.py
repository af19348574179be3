"""deploy/ stays what the README promises: Envoy speaks gRPC over HTTP/2 to a cluster of routers,
health-checked with the standard gRPC health service; the systemd units start the processes the
command line knows, reload on SIGHUP and give the drain the time it needs."""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from http_edge._app import SHUTDOWN_GRACE_S
from router_service._throttle import TrustedProxies
from router_service.cli import parser
from router_service.config import AuthConfig, ServerConfig

ENVOY = Path(__file__).parents[2] / "deploy" / "envoy.yaml"


def test_envoy_balances_grpc_over_healthy_routers() -> None:
    config: dict[str, Any] = yaml.safe_load(ENVOY.read_text())
    resources = config["static_resources"]
    (cluster,) = resources["clusters"]
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "http2_protocol_options" in options["explicit_http_config"]
    assert cluster["health_checks"][0]["grpc_health_check"] == {"service_name": ""}
    assert cluster["load_assignment"]["cluster_name"] == cluster["name"]

    (listener,) = resources["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (route,) = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert route["route"]["cluster"] == cluster["name"]
    assert route["route"]["timeout"] == "0s"  # streams are bounded by the callers' deadlines


def test_envoy_says_the_routers_must_listen_beyond_loopback_and_drain_for_its_polls() -> None:
    """Envoy reaches the routers by name, and a router binds loopback unless told; Envoy polls
    health, so only a drain delay set in the config is waited for it."""
    text = ENVOY.read_text()
    (cluster,) = yaml.safe_load(text)["static_resources"]["clusters"]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert not endpoint["endpoint"]["address"]["socket_address"]["address"].startswith("127.")
    assert ServerConfig().host == "127.0.0.1"
    assert "server: {host: 0.0.0.0}" in text
    check = cluster["health_checks"][0]
    polled_s = int(check["interval"].removesuffix("s")) * check["unhealthy_threshold"]
    (delay,) = re.findall(r"drain_delay_s: (\d+)", text)
    assert int(delay) > polled_s


def test_envoy_names_each_caller_to_the_routers() -> None:
    """The routers count wrong keys by caller address (`auth.key_throttle`). Envoy passes a
    caller's x-forwarded-for on untouched unless it appends the address it saw
    (`use_remote_address`): then, with Envoy trusted as its header says, the routers count an
    edge's caller by the address the edge named and a gRPC caller by its own, whatever it wrote;
    not every caller by Envoy's address, where one guesser locks out the rest."""
    text = ENVOY.read_text()
    (listener,) = yaml.safe_load(text)["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager.get("use_remote_address") is True
    assert manager.get("skip_xff_append", False) is False
    (listed,) = re.findall(r"auth: \{trusted_proxies: (\[.*?\])\}", text)
    auth = AuthConfig.model_validate({"open": True, "trusted_proxies": yaml.safe_load(listed)})
    proxies = TrustedProxies(auth.trusted_proxies)
    envoy = "ipv4:10.0.5.7:41000"  # an Envoy in the range its header lists

    # What Envoy forwards: the x-forwarded-for it was sent, and the address it saw appended.
    beside_edge = proxies.caller_address(envoy, "198.51.100.20, 127.0.0.1")
    own_words = proxies.caller_address(envoy, "192.0.2.1, 203.0.113.7")

    assert beside_edge == "198.51.100.20" and own_words == "203.0.113.7"


SYSTEMD = Path(__file__).parents[2] / "deploy" / "systemd"


def _service(name: str) -> configparser.SectionProxy:
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string((SYSTEMD / name).read_text())
    return unit["Service"]


def _command(service: configparser.SectionProxy) -> argparse.Namespace:
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/switchboard")
    return parser().parse_args(argv[1:])


def test_systemd_units_start_switchboard_reload_on_sighup_and_wait_for_the_drain() -> None:
    router = _service("switchboard-router.service")
    assert _command(router).command == "router"
    assert router["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(router["TimeoutStopSec"]) > ServerConfig().shutdown_grace_s

    edge = _service("switchboard-edge.service")
    command = _command(edge)
    assert command.command == "edge" and command.router == ["127.0.0.1:50051"]
    assert "EnvironmentFile" not in edge  # the edge needs no provider key
    assert int(edge["TimeoutStopSec"]) > SHUTDOWN_GRACE_S
