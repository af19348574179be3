"""`guardrails:` in the config file: what loads, and the errors that name the file, the line and
the path of what is wrong."""

from __future__ import annotations

import pytest

from router_service.config import parse_config
from router_service.errors import ConfigError

BASE = """
providers:
  alpha:
    base_url: http://127.0.0.1:18100/v1
    keys: [sk-alpha]
models:
  chat:
    deployments: [{provider: alpha, model: small-fast}]
auth:
  clients:
    - {name: support-bot, key_sha256: "%s"}
""" % ("ab" * 32)


def _error(guardrails: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + guardrails, source="c.yaml", env={})
    return str(caught.value)


def test_the_documented_section_loads() -> None:
    config = parse_config(
        BASE
        + """guardrails:
  - name: no-credentials
    detect: [api_key, private_key]
    action: block
  - name: pii
    detect: [email, credit_card, phone]
    action: redact
    clients: [support-bot]
    models: ["openai/*"]
  - name: internal-codenames
    patterns: ['(?i)\\bproject\\s+falcon\\b']
    action: block
""",
        source="c.yaml",
        env={},
    )
    names = [rule.name for rule in config.guardrails]
    assert names == ["no-credentials", "pii", "internal-codenames"]
    assert config.guardrails[1].clients == ["support-bot"]


def test_an_invalid_regex_is_an_error_at_its_line() -> None:
    message = _error("guardrails:\n  - name: x\n    patterns: ['(unclosed']\n    action: block\n")
    assert message.startswith(
        "c.yaml:14: guardrails[0].patterns: Value error, patterns[0] is not a valid regex"
    )


def test_a_nested_unbounded_repetition_is_refused() -> None:
    message = _error("guardrails:\n  - name: x\n    patterns: ['(a+)+b']\n    action: block\n")
    assert "c.yaml:14: guardrails[0].patterns" in message
    assert "catastrophic backtracking" in message


def test_a_pattern_over_the_length_cap_is_refused() -> None:
    long = "a" * 513
    message = _error(f"guardrails:\n  - name: x\n    patterns: ['{long}']\n    action: block\n")
    assert "patterns[0] is 513 characters; at most 512" in message


def test_an_unknown_detector_is_named() -> None:
    message = _error("guardrails:\n  - name: x\n    detect: [ssn]\n    action: block\n")
    assert message.startswith("c.yaml:14: guardrails[0].detect[0]: Input should be 'api_key'")


def test_an_unknown_client_is_an_error_at_its_name() -> None:
    message = _error(
        "guardrails:\n  - name: x\n    detect: [email]\n    action: redact\n"
        "    clients: [support-bot, nobody]\n"
    )
    assert message == (
        "c.yaml:16: guardrails[0].clients[1]: Value error, unknown client 'nobody' "
        "(auth.clients[].name)"
    )


def test_a_rule_detecting_nothing_and_a_duplicate_name_are_errors() -> None:
    assert "needs `detect` or `patterns`" in _error("guardrails:\n  - {name: x, action: block}\n")
    twice = (
        "guardrails:\n  - {name: x, detect: [email], action: block}\n"
        "  - {name: x, detect: [phone], action: redact}\n"
    )
    assert "c.yaml:14: guardrails[1].name: Value error, guardrail names must be unique" in _error(
        twice
    )


def test_an_unknown_action_is_refused() -> None:
    message = _error("guardrails:\n  - {name: x, detect: [email], action: warn}\n")
    assert "guardrails[0].action" in message and "'block' or 'redact'" in message


def test_apply_to_defaults_to_requests_and_takes_responses() -> None:
    config = parse_config(
        BASE
        + "guardrails:\n  - {name: a, detect: [email], action: redact}\n"
        + "  - {name: b, detect: [email], action: block, apply_to: [response]}\n"
        + "  - {name: c, detect: [email], action: redact, apply_to: [request, response]}\n",
        source="c.yaml",
        env={},
    )
    assert [rule.apply_to for rule in config.guardrails] == [
        ["request"],
        ["response"],
        ["request", "response"],
    ]


def test_an_unknown_side_is_an_error_at_its_line_and_path() -> None:
    message = _error(
        "guardrails:\n  - name: x\n    detect: [email]\n    action: block\n"
        "    apply_to: [request, answers]\n"
    )
    assert message.startswith("c.yaml:16: guardrails[0].apply_to[1]: Input should be 'request'")


def test_apply_to_names_each_side_once_and_at_least_one() -> None:
    rule = "{name: x, detect: [email], action: block, apply_to: [response, response]}"
    twice = f"guardrails:\n  - {rule}\n"
    assert "guardrails[0].apply_to" in _error(twice) and "names a side twice" in _error(twice)
    empty = "guardrails:\n  - {name: x, detect: [email], action: block, apply_to: []}\n"
    assert "guardrails[0].apply_to" in _error(empty)
