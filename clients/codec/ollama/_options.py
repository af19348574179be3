"""Ollama's `options`, `format` and `think` → OpenAI's chat keys (`OPTION_KEYS`).

`options` are the Modelfile's parameters: those a hosted deployment has a word for become it
(`num_predict` → `max_tokens`), those that tune only a local runner (`IGNORED_OPTIONS`:
`num_ctx`, `num_gpu`…) are accepted and not read, and any other is refused, naming it.
`format` is `"json"` (JSON mode) or a JSON schema (structured output); `think` is a boolean
or an effort (`"low"`, `"medium"`, `"high"`).
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import (
    at,
    at_index,
    expect_int,
    expect_int32,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    fail_type,
    invalid_value,
)
from clients.codec.ollama._tables import IGNORED_OPTIONS, OPTION_KEYS, THINK_EFFORTS
from clients.errors import InvalidRequestError

__all__ = ["chat_options", "response_format", "think_effort"]

JsonObject = dict[str, Any]

_NUMBERS = frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"})


def chat_options(value: Any) -> JsonObject:
    """The OpenAI chat keys an `options` object sets; its values' types checked here, so an
    error names `options.x` (their ranges are the shared OpenAI checks')."""
    options = expect_object(value, "options")
    out: JsonObject = {}
    for key, option in options.items():
        path = at("options", key)
        if key in IGNORED_OPTIONS or option is None:
            continue
        if key not in OPTION_KEYS:
            raise InvalidRequestError(
                f"{path}: not an option this gateway takes (it takes "
                f"{', '.join(sorted(OPTION_KEYS))}, and accepts and ignores "
                f"{', '.join(sorted(IGNORED_OPTIONS))})",
                path,
            )
        out[OPTION_KEYS[key]] = _option(key, option, path)
    return out


def _option(key: str, value: Any, path: str) -> Any:
    if key in _NUMBERS:
        return expect_number(value, path)
    if key == "stop":
        if isinstance(value, str):
            return [value]
        return [expect_str(s, at_index(path, i)) for i, s in enumerate(expect_list(value, path))]
    if key == "num_predict":
        # Ollama's -1 (until the model stops) and -2 (until the context fills): no limit.
        count = expect_int(value, path)
        if count < 0:
            return None
        if count == 0:
            raise InvalidRequestError(f"{path}: must be at least 1, or -1 (no limit)", path)
        return count
    number = expect_int32(value, path) if key == "top_k" else expect_int(value, path)
    if key == "top_k" and number < 1:
        raise InvalidRequestError(f"{path}: must be at least 1", path)
    return number


def response_format(value: Any) -> JsonObject | None:
    """OpenAI's `response_format` for Ollama's `format` (None: free text)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if value != "json":
            invalid_value("format", value, ("json", "a JSON schema object"))
        return {"type": "json_object"}
    if not isinstance(value, dict):
        fail_type("format", '"json" or a JSON schema object', value)
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": value}}


def think_effort(value: Any) -> JsonObject:
    """`{"reasoning_effort": …}` for `think` (`{}`: the deployment's default)."""
    if value is None:
        return {}
    if not isinstance(value, (bool, str)):
        fail_type("think", 'a boolean or "low", "medium", "high"', value)
    if value not in THINK_EFFORTS:
        invalid_value("think", value, ("true", "false", "low", "medium", "high"))
    effort = THINK_EFFORTS[value]
    return {} if effort is None else {"reasoning_effort": effort}
