"""Ollama's `options`, `format` and `think` → OpenAI's chat keys (`OPTION_KEYS`).

`options` are the Modelfile's parameters: those a hosted deployment has a word for become it
(`num_predict` → `max_tokens`), and any other is accepted and not read, as Ollama itself logs
and drops an option it does not know: those that tune only a local runner (`num_ctx`,
`num_gpu`…), the samplers no hosted API has (`min_p`, `mirostat`…), those older Ollamas had
(`tfs_z`, `rope_frequency_base`…) and a client's own. Real clients send them all (LangChain's
`ChatOllama` its `tfs_z` and `mirostat`, Open WebUI what its user typed).
`format` is `"json"` (JSON mode) or a JSON schema (structured output); `think` is a boolean
or an effort (`"low"`, `"medium"`, `"high"`); `false` also hides any reasoning the answer has.
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
from clients.codec.ollama._tables import OPTION_KEYS, THINK_EFFORTS

__all__ = ["chat_options", "response_format", "think_effort"]

JsonObject = dict[str, Any]

_NUMBERS = frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"})


def chat_options(value: Any) -> JsonObject:
    """The OpenAI chat keys an `options` object sets; its values' types checked here, so an
    error names `options.x` (their ranges are the shared OpenAI checks')."""
    options = expect_object(value, "options")
    out: JsonObject = {}
    for key, option in options.items():
        if key in OPTION_KEYS and option is not None:
            out[OPTION_KEYS[key]] = _option(key, option, at("options", key))
    return out


def _option(key: str, value: Any, path: str) -> Any:
    if key in _NUMBERS:
        return expect_number(value, path)
    if key == "stop":
        if isinstance(value, str):
            return [value]
        return [expect_str(s, at_index(path, i)) for i, s in enumerate(expect_list(value, path))]
    # An integer, which Ollama also takes written as a float (Go reads JSON numbers so): 40.0.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if key == "num_predict":
        # Ollama's -1 (until the model stops), -2 (until the context fills) and 0 (its runner
        # limits only a count above 0): no limit.
        count = expect_int(value, path)
        return count if count > 0 else None
    if key == "top_k":
        # llama.cpp's top_k of 0 or less samples from every token: no top-k, nothing sent.
        number = expect_int32(value, path)
        return number if number > 0 else None
    seed = expect_int(value, path)
    return None if seed == -1 else seed  # Ollama's default, -1, is a random seed


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
    if value is False:
        # No thinking in the answer, as Ollama gives none: a deployment that reasons however it
        # is asked has it taken out router side (`include_reasoning: false`, the router's one
        # way to hide it, as the Gemini entrance hides thoughts not asked for).
        return {"reasoning_effort": effort, "include_reasoning": False}
    return {} if effort is None else {"reasoning_effort": effort}
