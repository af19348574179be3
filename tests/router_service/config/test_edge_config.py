"""The edge reads its part of the shared file: the router's secrets need not be in its
environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_the_edge_knows_every_section_of_the_routers_file() -> None:
    # The edge checks section names without the router's models (config/_edge_file.py).
    from router_service.config import SwitchboardConfig
    from router_service.config._edge_file import SECTIONS

    assert set(SwitchboardConfig.model_fields) == SECTIONS


# The edge's start-up as the CLI's: its part of a file read, telemetry configured, the app
# built and served by uvicorn's config; argv[1]: the file, argv[2:]: the modules to look for.
_EDGE_START = """
import sys
from router_service.config import load_edge_config
from router_service.telemetry import configure_telemetry
import http_edge
from http_edge._app import uvicorn_config

config = load_edge_config(sys.argv[1])
configure_telemetry("switchboard-edge", config)
uvicorn_config(http_edge.create_app(config.edge), config.edge).load()
print(*[name for name in sys.argv[2:] if name in sys.modules])
"""


def test_the_edge_reads_its_part_without_the_routers_models(tmp_path: Path) -> None:
    # The router's section models (providers, routing, auth, guardrails…: ~1 MiB) are none of
    # an idle edge's business, also when it reads the shared file.
    path = tmp_path / "switchboard.yaml"
    path.write_text(SHARED)
    unwanted = ["router_service.config._models", "router_service.config._providers"]
    unwanted += ["router_service.config._routing", "router_service.config._auth"]
    done = subprocess.run(
        [sys.executable, "-c", _EDGE_START, str(path), *unwanted],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **EDGE_ENV},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


@pytest.mark.parametrize("target", ['"10.0.0.1:70000"', '["10.0.0.1:1", "10.0.0.2:99999"]'])
def test_a_router_target_port_past_65535_is_refused(target: str) -> None:
    with pytest.raises(ConfigError, match=r"port .* is past 65535"):
        parse_edge_config(f"edge: {{router_target: {target}}}\n", source="c.yaml", env={})


def test_a_router_target_written_as_a_url_is_refused_naming_its_address() -> None:
    # It was said to be an IPv6 address to write as '[http://router:50051]:PORT'.
    config = "edge: {router_target: 'http://router.default.svc:50051'}\n"
    with pytest.raises(ConfigError, match="is a URL") as refused:
        parse_edge_config(config, source="c.yaml", env={})
    assert "'router.default.svc:50051'" in str(refused.value)


@pytest.mark.parametrize("target", ['""', "[]", '["10.0.0.1:1", ""]'])
def test_no_router_target_is_refused_by_the_config_check(target: str) -> None:
    """Not left to the edge's start, which failed with a traceback (an empty list)."""
    with pytest.raises(ConfigError, match="router target"):
        parse_edge_config(f"edge: {{router_target: {target}}}\n", source="c.yaml", env={})


def test_the_edge_sets_how_long_a_call_waits_for_a_router_connection() -> None:
    config = parse_edge_config("edge: {router_ready_wait_s: 0.5}\n", source="c.yaml", env={})
    assert config.edge.router_ready_wait_s == 0.5
    assert parse_edge_config("{}\n", env={}).edge.router_ready_wait_s == 3.0  # the clients'


@pytest.mark.parametrize(
    ("wait", "problem"),
    [("-1", "greater than or equal to 0"), ("3600", "less than or equal to 60"), (".nan", "")],
)
def test_a_negative_or_absurd_router_ready_wait_is_refused(wait: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=rf"c.yaml:1: edge.router_ready_wait_s: .*{problem}"):
        parse_edge_config(f"edge: {{router_ready_wait_s: {wait}}}\n", source="c.yaml", env={})


@pytest.mark.parametrize("setting", ["admin_token", "admin_router_key"])
@pytest.mark.parametrize("secret", ["tok\u2019123", "tok\u00e9123", "tok\u00a0123", "tok\t123"])
def test_an_admin_secret_no_http_or_grpc_header_can_carry_is_refused_at_load(
    setting: str, secret: str
) -> None:
    """An admin token with a pasted curly quote (or an accent, a no-break space) loaded, and
    every admin call was then 401 `Incorrect admin token provided.`, counted towards the
    lockout: a header carries no such character as typed (the page's fetch refuses to send
    it, curl's UTF-8 is read back as Latin-1), nor gRPC metadata the router key. Refused at
    load by its path, never shown."""
    text = f'edge: {{{setting}: "${{SECRET}}"}}\n'
    with pytest.raises(ConfigError) as caught:
        parse_edge_config(text, source="c.yaml", env={"SECRET": secret})
    message = str(caught.value)
    assert f"c.yaml:1: edge.{setting}" in message and "printable ASCII" in message
    assert secret not in message and "123" not in message


@pytest.mark.parametrize("where", ['key: "${SECRET}"', "key: [k2, {key: '${SECRET}'}]"])
def test_a_client_key_no_header_can_carry_is_refused_at_load(where: str) -> None:
    """A client key no caller can send (gRPC metadata and the edge take printable ASCII
    only): loaded, its client could never call. Refused by its path, never shown."""
    text = SHARED.replace('key: "${APP_KEY}"', where)
    env = {
        "UPSTREAM": "http://127.0.0.1:1/v1",
        "ALPHA_KEY": "k",
        "ALPHA_KEY_2": "k",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SECRET": "sk-app\u2019123",
    } | EDGE_ENV
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env=env)
    message = str(caught.value)
    assert "c.yaml:11: auth.clients[0].key" in message and "printable ASCII" in message
    assert "sk-app" not in message and "123" not in message
