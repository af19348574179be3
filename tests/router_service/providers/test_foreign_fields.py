"""Which of other servers' message fields (`reasoning_content`, `reasoning`,
`reasoning_details`, `cache_control`) an OpenAI-format deployment's server gets: by kind and
base URL host unless the provider's `message_fields` says."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from router_service.config import parse_config
from router_service.errors import ConfigError
from router_service.providers._foreign_fields import (
    ALL_FIELDS,
    taken_fields,
    without_foreign_fields,
)

DEEPSEEK = frozenset({"reasoning_content"})


@pytest.mark.parametrize(
    ("kind", "base_url", "taken"),
    [
        ("openai", "https://api.openai.com/v1", frozenset()),
        ("openai", "https://eu.api.openai.com/v1", frozenset()),  # OpenAI's data residency
        ("openai", "https://api.mistral.ai/v1", frozenset()),
        ("azure", "https://res.openai.azure.com", frozenset()),
        ("openai", "https://api.groq.com/openai/v1", frozenset()),
        ("openai", "https://api.cerebras.ai/v1", frozenset()),
        ("openai", "https://generativelanguage.googleapis.com/v1beta/openai", frozenset()),
        ("openai", "https://api.deepseek.com", DEEPSEEK),
        ("openai", "https://API.DeepSeek.com/v1", DEEPSEEK),
        ("openai", "https://api.x.ai/v1", DEEPSEEK),
        ("openai", "https://openrouter.ai/api/v1", ALL_FIELDS),
        ("openai", "http://127.0.0.1:8000/v1", ALL_FIELDS),
    ],
)
def test_the_fields_a_server_takes_by_kind_and_host(
    kind: str, base_url: str, taken: frozenset[str]
) -> None:
    assert taken_fields(kind, base_url, None) == taken


def test_a_providers_message_fields_win() -> None:
    assert taken_fields("openai", "https://api.openai.com/v1", ["cache_control"]) == {
        "cache_control"
    }
    assert taken_fields("openai", "https://openrouter.ai/api/v1", []) == frozenset()


def test_message_fields_are_read_at_openai_format_kinds_only_and_named() -> None:
    config = (
        "providers: {p: {kind: KIND, base_url: 'https://x.example', keys: [k], "
        "message_fields: FIELDS}}\nmodels: {g: {deployments: [{provider: p, model: m}]}}\n"
        "auth: {open: true}\n"
    )
    fields = "[reasoning_content, cache_control]"
    parsed = parse_config(config.replace("KIND", "openai").replace("FIELDS", fields))
    assert parsed.providers["p"].message_fields == ["reasoning_content", "cache_control"]
    with pytest.raises(ConfigError, match="message_fields: Value error, only kinds openai"):
        parse_config(config.replace("KIND", "cohere").replace("FIELDS", fields), source="c.yaml")
    with pytest.raises(ConfigError, match="message_fields"):
        parse_config(config.replace("KIND", "openai").replace("FIELDS", "[thinking_blocks]"))


def test_a_server_that_takes_no_cache_control_gets_no_anthropic_block_fields() -> None:
    """The Messages API entrance puts a `tool_use`'s breakpoint on its call and a document's
    `citations` and `context` on its file part: they go where `cache_control` goes."""
    mark = {"type": "ephemeral"}
    file = {"file_data": "data:text/plain;base64,c2t5", "filename": "Sky"}
    document = {"type": "file", "file": file, "citations": {"enabled": True}, "context": "c"}
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages: list[Any] = [
        {"role": "user", "content": [document | {"cache_control": mark}]},
        {"role": "assistant", "content": None, "tool_calls": [call | {"cache_control": mark}]},
        {"role": "tool", "tool_call_id": "t1", "content": "", "cache_control": mark},
    ]
    kept: dict[str, Any] = {"messages": copy.deepcopy(messages)}
    without_foreign_fields(kept, ALL_FIELDS)
    assert kept["messages"] == messages
    stripped: dict[str, Any] = {"messages": messages}
    without_foreign_fields(stripped, frozenset())
    assert stripped["messages"] == [
        {"role": "user", "content": [{"type": "file", "file": file}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "t1", "content": ""},
    ]
