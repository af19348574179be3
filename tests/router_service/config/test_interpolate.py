"""`${VAR}` with the shell's meaning, and keys that must not come out empty."""

from __future__ import annotations

import hashlib

import pytest

from router_service.config import parse_config, parse_edge_config
from router_service.config._interpolate import Unset, interpolate
from router_service.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${V:-d}", {}, "d"),
        ("${V:-d}", {"V": ""}, "d"),  # set but empty: the default, as in the shell
        ("${V:-d}", {"V": "x"}, "x"),
        ("${V-d}", {}, "d"),
        ("${V-d}", {"V": ""}, ""),  # no colon: the default only when unset
        ("${V-d}", {"V": "x"}, "x"),
        ("${V}", {"V": ""}, ""),
        ("a-${V:-}-b", {}, "a--b"),
        ("$${V:-d} $${W-e} $${X}", {}, "${V:-d} ${W-e} ${X}"),
        ("http://${H:-localhost}:${P-80}/v1", {"P": "8080"}, "http://localhost:8080/v1"),
    ],
)
def test_shell_semantics(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_unset_names_every_variable() -> None:
    with pytest.raises(Unset) as caught:
        interpolate("${A}/${B:-x}/${C}", {})
    assert caught.value.names == ["A", "C"]


CONFIG = """
providers:
  alpha:
    base_url: ${UPSTREAM:-http://127.0.0.1:18100/v1}
    keys: ["${ALPHA_KEY}", {key: "${BETA_KEY}"}]
auth:
  clients: [{name: app, key: "${APP_KEY}"}]
edge: {admin_token: "${ADMIN_TOKEN}", admin_router_key: "${ADMIN_KEY}"}
"""
SET = {"ALPHA_KEY": "a", "BETA_KEY": "b", "APP_KEY": "c", "ADMIN_TOKEN": "d", "ADMIN_KEY": "e"}


def test_empty_variable_takes_the_default() -> None:
    config = parse_config(CONFIG, env={**SET, "UPSTREAM": ""})
    assert config.providers["alpha"].base_url == "http://127.0.0.1:18100/v1"


@pytest.mark.parametrize(
    ("variable", "line", "path"),
    [
        ("ALPHA_KEY", 5, "providers.alpha.keys[0].key"),
        ("BETA_KEY", 5, "providers.alpha.keys[1].key"),
        ("APP_KEY", 7, "auth.clients[0].key"),
        ("ADMIN_TOKEN", 8, "edge.admin_token"),
        ("ADMIN_KEY", 8, "edge.admin_router_key"),
    ],
)
@pytest.mark.parametrize("blank", ["", "  \t"])
def test_empty_secrets_are_refused_by_path(variable: str, line: int, path: str, blank: str) -> None:
    """An empty key would start a router that sends an empty key upstream (and an empty admin
    token would let `Authorization: Bearer ` in); the error names the setting, never a value."""
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG, source="c.yaml", env={**SET, variable: blank})
    message = str(caught.value)
    assert message.startswith(f"c.yaml:{line}: {path}: Value error, must")
    assert "empty" in message
    assert message.count("\n") == 0


@pytest.mark.parametrize(
    "written",
    [
        "${ALPHA_KEY:?set ALPHA_KEY}",  # the shell's "required", Compose's too
        "${ALPHA_KEY:+x}",
        "${ALPHA_KEY:-${BETA_KEY}}",  # a nested default
        "sk-${ALPHA_KEY",
        # The shell's substring, trim, replace, case and length forms: each the key as written.
        "${ALPHA_KEY:0:8}",
        "${ALPHA_KEY: -4}",
        "${ALPHA_KEY#Bearer }",
        "${ALPHA_KEY%%.*}",
        "${ALPHA_KEY/a/b}",
        "${ALPHA_KEY^^}",
        "${ALPHA_KEY,,}",
        "${#ALPHA_KEY}",
        "${!ALPHA_KEY}",
    ],
)
def test_a_form_it_does_not_read_is_refused_not_sent_as_the_key(written: str) -> None:
    """Left as it was written, `${ALPHA_KEY:?…}` would be the key sent upstream (and a nested
    default the variable's value with a `}` after it)."""
    text = CONFIG.replace('"${ALPHA_KEY}"', f"'{written}'")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml", env=SET)
    assert str(caught.value) == (
        "c.yaml:5: providers.alpha.keys[0]: a ${…} it does not read: ${VAR}, ${VAR:-default}, "
        "${VAR-default}, or $${…} for a literal ${…}"
    )


def test_an_escaped_form_is_a_literal_whatever_follows() -> None:
    assert interpolate("$${A:?x} $${B", {}) == "${A:?x} ${B"


def test_a_dollar_brace_that_is_no_variable_is_text() -> None:
    """A guardrail's pattern: log4j's lookups (`${jndi:…}`, `${env:X}`, `${::-j}`) and Spring's
    placeholders stay as written."""
    text = r"\${jndi:ldap ${A B} ${1} ${env:USER} ${::-j} ${spring.datasource.password}"
    assert interpolate(text, {}) == text


def test_a_form_it_does_not_read_in_a_section_it_ignores_is_left_alone() -> None:
    """The edge reads `edge:` and `telemetry:` only: the router's sections are not its to check."""
    text = CONFIG.replace('"${ALPHA_KEY}"', "'${ALPHA_KEY:?x}'")
    edge = parse_edge_config(text, source="c.yaml", env={"ADMIN_TOKEN": "d", "ADMIN_KEY": "e"})
    assert edge.edge.admin_token is not None


def test_secrets_lose_the_line_break_a_secret_file_ends_with() -> None:
    """A Kubernetes secret made from a file (`--from-file`) ends with the file's newline: sent
    as it was, every call failed (a header value with a line break), a client key's hash and the
    admin token never matched what a caller can send (HTTP trims header values)."""
    ended = {name: f" {value}\n" for name, value in SET.items()}
    config = parse_config(CONFIG, env=ended)
    keys = [key.key.get_secret_value() for key in config.providers["alpha"].keys]
    assert keys == ["a", "b"]
    assert config.auth.clients[0].key_sha256 == hashlib.sha256(b"c").hexdigest()
    edge = config.edge
    assert edge.admin_token is not None and edge.admin_token.get_secret_value() == "d"
    assert edge.admin_router_key is not None and edge.admin_router_key.get_secret_value() == "e"
