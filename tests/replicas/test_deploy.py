"""deploy/envoy.yaml stays what the README promises: gRPC over HTTP/2 to a cluster of routers,
health-checked with the standard gRPC health service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

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
