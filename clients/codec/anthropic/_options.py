"""Options of a Messages API request the router reads: `thinking`'s shape, checked; and
structured outputs, the Messages API's `output_config.format` ⇄ OpenAI's `response_format`.

Followed: https://platform.claude.com/docs/en/build-with-claude/structured-outputs:
`output_config: {"format": {"type": "json_schema", "schema": {…}}}` constrains the answer's
text to the schema (the one type there is). OpenAI's `response_format` says the same as
`{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}` (strict: Claude's
is always so); its `json_object` mode has no Claude word and stays OpenAI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._json import at, expect_int, expect_object, expect_str, invalid_value, missing

__all__ = ["FORMAT_NAME", "check_thinking", "output_format", "with_response_format"]

JsonObject = dict[str, Any]

# The name OpenAI's json_schema format needs and Claude's has none of.
FORMAT_NAME = "output"
_PATH = "output_config.format"


def with_response_format(out: JsonObject) -> None:
    """In `out` (the OpenAI body being written), the caller's `output_config.format` as
    `response_format`; the rest of `output_config` (its `effort`) stays, for the router."""
    config = out.get("output_config")
    if config is None:
        return
    config = expect_object(config, "output_config")
    given = config.get("format")
    rest = {key: value for key, value in config.items() if key != "format"}
    if rest:
        out["output_config"] = rest
    else:
        del out["output_config"]
    if given is None:
        return
    given = expect_object(given, _PATH)
    if "type" not in given:
        missing(at(_PATH, "type"))
    if expect_str(given["type"], at(_PATH, "type")) != "json_schema":
        invalid_value(at(_PATH, "type"), given["type"], ["json_schema"])
    if given.get("schema") is None:
        missing(at(_PATH, "schema"))
    schema = expect_object(given["schema"], at(_PATH, "schema"))
    json_schema = {"name": FORMAT_NAME, "schema": schema, "strict": True}
    out["response_format"] = {"type": "json_schema", "json_schema": json_schema}


def output_format(response_format: Any) -> JsonObject | None:
    """Claude's `output_config.format` for OpenAI's `response_format`, when it says a schema."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    json_schema = response_format.get("json_schema")
    schema = json_schema.get("schema") if isinstance(json_schema, Mapping) else None
    return {"type": "json_schema", "schema": schema} if isinstance(schema, Mapping) else None


def check_thinking(value: Any) -> None:
    """`thinking`, passed on as given, in its shape: an object of a `type`, with an integer
    `budget_tokens` when enabled (what the router reads of it, for any deployment)."""
    thinking = expect_object(value, "thinking")
    if "type" not in thinking:
        missing("thinking.type")
    kind = expect_str(thinking["type"], "thinking.type")
    if kind == "enabled" and "budget_tokens" not in thinking:
        missing("thinking.budget_tokens")
    if "budget_tokens" in thinking:
        expect_int(thinking["budget_tokens"], "thinking.budget_tokens")
