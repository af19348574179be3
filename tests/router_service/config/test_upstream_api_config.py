"""A deployment's `api` (chat or responses): refused where the kind has no Responses API, with
its place in the file; unset, Responses-only models at kinds openai and azure get `responses`.
`custom_tools` is refused at the kinds that never read it."""

from __future__ import annotations

import pytest

from router_service.config import parse_config
from router_service.errors import ConfigError
from router_service.providers._responses_models import responses_only, upstream_api

CONFIG = """
providers:
  claude: {kind: anthropic, base_url: https://api.anthropic.com/v1, keys: [k]}
  openai: {base_url: https://api.openai.com/v1, keys: [k]}
models:
  thinker:
    deployments:
      - {provider: openai, model: house, api: responses}
      - {provider: claude, model: claude-opus-4-7, api: API}
auth: {open: true}
"""


def test_api_responses_is_refused_on_a_kind_without_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.replace("API", "responses"), source="c.yaml")

    assert str(caught.value) == (
        "c.yaml:9: models.thinker.deployments[1].api: Value error, kind anthropic has no "
        "Responses API (only openai and azure have)"
    )


@pytest.mark.parametrize("value", ["true", "false"])
def test_custom_tools_is_refused_at_a_kind_that_never_reads_it(value: str) -> None:
    text = CONFIG.replace("API", "chat").replace(
        "keys: [k]}", f"keys: [k], custom_tools: {value}}}", 1
    )

    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml")

    assert str(caught.value) == (
        "c.yaml:3: providers.claude.custom_tools: Value error, only kinds openai, azure and "
        "cloudflare read it, not anthropic (custom tools are emulated)"
    )
    at_openai = CONFIG.replace("API", "chat").replace(
        "openai.com/v1, keys: [k]", f"openai.com/v1, keys: [k], custom_tools: {value}"
    )
    assert parse_config(at_openai).providers["openai"].custom_tools is (value == "true")


def test_api_chat_is_taken_at_any_kind() -> None:
    config = parse_config(CONFIG.replace("API", "chat"))

    assert [d.api for d in config.models["thinker"].deployments] == ["responses", "chat"]


def test_one_deployment_has_one_api_in_every_group() -> None:
    twice = CONFIG.replace("API", "chat") + (
        "  again:\n    deployments:\n      - {provider: openai, model: house, api: chat}\n"
    )
    twice = twice.replace("auth: {open: true}\n", "") + "auth: {open: true}\n"

    with pytest.raises(ConfigError, match=r"models\.again\.deployments\[0\]\.api: .*another api"):
        parse_config(twice)


@pytest.mark.parametrize(
    ("kind", "model", "configured", "api"),
    [
        ("openai", "gpt-5-pro", None, "responses"),
        ("openai", "gpt-5-pro-2025-10-06", None, "responses"),
        ("azure", "o3-pro", None, "responses"),
        ("openai", "openai/o1-pro", None, "chat"),  # another gateway's name: its chat serves it
        ("openai", "openai/o1-pro", "responses", "responses"),
        ("openai", "gpt-5.1-codex-max", None, "responses"),
        ("openai", "codex-mini-latest", None, "responses"),
        ("openai", "o4-mini-deep-research", None, "responses"),
        ("openai", "computer-use-preview", None, "responses"),
        ("openai", "gpt-5.2-pro", None, "responses"),
        ("openai", "gpt-5", None, "chat"),
        ("openai", "o3", None, "chat"),
        ("openai", "gpt-5-pro", "chat", "chat"),  # as configured
        ("openai", "house", "responses", "responses"),
        ("cloudflare", "gpt-5-pro", None, "chat"),  # a kind without the API: as it is
    ],
)
def test_unset_it_follows_the_models_name(
    kind: str, model: str, configured: str | None, api: str
) -> None:
    assert upstream_api(kind, model, configured) == api  # type: ignore[arg-type]


def test_the_name_table_reads_no_prefix_as_a_match() -> None:
    assert not responses_only("my-gpt-5-pro-proxy")
    assert not responses_only("o3-professional")


def test_hosted_tools_are_read_at_kind_openai_only_and_must_be_hosted_tools() -> None:
    at_claude = CONFIG.replace("API", "chat").replace(
        "keys: [k]}", "keys: [k], hosted_tools: [code_interpreter]}", 1
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(at_claude, source="c.yaml")
    assert "providers.claude.hosted_tools: Value error, only kind openai reads it" in str(
        caught.value
    )

    unknown = CONFIG.replace("API", "chat").replace(
        "openai.com/v1, keys: [k]", "openai.com/v1, keys: [k], hosted_tools: [browser_search]"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(unknown, source="c.yaml")
    assert "hosted_tools[0]" in str(caught.value) and "'browser_search'" in str(caught.value)

    named = unknown.replace("browser_search", "code_interpreter")
    assert parse_config(named).providers["openai"].hosted_tools == ["code_interpreter"]
