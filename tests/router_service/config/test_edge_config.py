"""The edge reads its part of the shared file: the router's secrets need not be in its
environment."""

from __future__ import annotations

import pytest

from router_service.config import parse_config, parse_edge_config
from router_service.errors import ConfigError

SHARED = """
providers:
  alpha:
    base_url: ${UPSTREAM}
    keys: ["${ALPHA_KEY}", {key: "${ALPHA_KEY_2}", max_in_flight: 2}]
models:
  chat:
    deployments: [{provider: alpha, model: m}]
state: {backend: redis, url: "${REDIS_URL}"}
auth:
  clients: [{name: app, key: "${APP_KEY}"}]
edge:
  port: ${EDGE_PORT:-8081}
  router_target: ["${ROUTER_A}", "10.0.0.2:50051"]
  admin_token: ${EDGE_ADMIN_TOKEN}
telemetry: {log_format: text}
"""
EDGE_ENV = {"ROUTER_A": "10.0.0.1:50051", "EDGE_ADMIN_TOKEN": "tok"}


def test_edge_loads_without_the_routers_secrets() -> None:
    config = parse_edge_config(SHARED, env=EDGE_ENV)
    assert config.edge.port == 8081
    assert config.edge.router_target == ["10.0.0.1:50051", "10.0.0.2:50051"]
    assert config.edge.admin_token is not None
    assert config.edge.admin_token.get_secret_value() == "tok"
    assert config.telemetry.log_format == "text"


def test_the_router_still_needs_every_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(SHARED, source="c.yaml", env=EDGE_ENV)
    assert str(caught.value).splitlines() == [
        "c.yaml:4: providers.alpha.base_url: environment variable UPSTREAM is not set",
        "c.yaml:5: providers.alpha.keys[0]: environment variable ALPHA_KEY is not set",
        "c.yaml:5: providers.alpha.keys[1].key: environment variable ALPHA_KEY_2 is not set",
        "c.yaml:9: state.url: environment variable REDIS_URL is not set",
        "c.yaml:11: auth.clients[0].key: environment variable APP_KEY is not set",
    ]


def test_the_edges_own_variables_are_required() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_edge_config(SHARED, source="c.yaml", env={"ROUTER_A": "h:1"})
    assert str(caught.value) == (
        "c.yaml:15: edge.admin_token: environment variable EDGE_ADMIN_TOKEN is not set"
    )


def test_the_edge_still_refuses_unknown_sections_and_duplicates() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_edge_config(SHARED + "edeg: {port: 1}\n", source="c.yaml", env=EDGE_ENV)
    assert str(caught.value) == "c.yaml:17: edeg: Value error, not a section of the config"
    with pytest.raises(ConfigError, match=r"c.yaml:17: models: duplicate key \(first on line 6\)"):
        parse_edge_config(SHARED + "models: {}\n", source="c.yaml", env=EDGE_ENV)
    with pytest.raises(ConfigError, match=r"c.yaml:16: edge.porT: Extra inputs"):
        parse_edge_config(
            SHARED.replace("telemetry:", "  porT: 1\ntelemetry:"), source="c.yaml", env=EDGE_ENV
        )


def test_the_edges_log_redactor_knows_its_secrets() -> None:
    from router_service.telemetry import config_secrets

    assert config_secrets(parse_edge_config(SHARED, env=EDGE_ENV)) == ["tok"]
