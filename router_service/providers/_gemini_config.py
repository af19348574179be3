"""Gemini's `generationConfig`: the one mapped from OpenAI's fields, refined by the caller's own;
and the `GEMINI_ONLY` object a caller carries (`carried_config`), whose safetySettings' `method`
(HarmBlockMethod: SEVERITY or PROBABILITY) is Vertex AI's alone (`vertex_only`).

Followed: SafetySetting of the Gemini API (category, threshold:
https://ai.google.dev/api/generate-content#safetysetting) and of Vertex AI (category,
threshold, method: https://cloud.google.com/vertex-ai/docs/reference/rest/v1/SafetySetting);
Google's own Firebase AI Logic SDK refuses `method` before sending to the Gemini Developer API.

A null (the SDK's None) is unset, as OpenAI reads it: never sent, and a null in the caller's own
leaves the mapped value in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._json import at, at_index
from clients.codec.gemini import CONFIG_KEYS, GEMINI_ONLY, SAFETY_SETTINGS, checked_carried
from clients.errors import InvalidRequestError as CodecInvalidRequestError
from router_service.errors import UpstreamFailure
from router_service.providers import _mapping as M

__all__ = ["callers_config", "carried_config", "mapped_config", "refined_config", "vertex_only"]

JsonObject = dict[str, Any]

# generationConfig fields holding a schema: a value of their own, never merged into another.
_SCHEMAS = frozenset({"responseSchema", "responseJsonSchema"})


def callers_config(out: JsonObject) -> JsonObject:
    """The caller's own generationConfig, taken out of the Gemini body `out`, without its nulls;
    empty when none was sent."""
    own = out.pop("generationConfig", None)
    if own is not None and not isinstance(own, dict):
        raise M.caller_error("`generationConfig` must be an object.", param="generationConfig")
    return _unnulled(own) or {}


def carried_config(given: Any, *, vertex: bool) -> JsonObject:
    """The body's `GEMINI_ONLY` value (`given`) checked as `checked_carried` does (the router's
    entrance did so already: `validate_chat`), a copy, its safetySettings checked; for the
    Gemini API (not `vertex`), a safety setting's `method` is refused (`vertex_only`)."""
    try:
        carried = checked_carried(given)
    except CodecInvalidRequestError as exc:
        raise M.caller_error(exc.message, param=exc.param) from exc
    refusal = None if vertex else vertex_only(carried)
    if refusal is not None:
        raise refusal
    return carried


def vertex_only(carried: Mapping[str, Any] | None) -> UpstreamFailure | None:
    """The UNSUPPORTED_INPUT failure of a safety setting's `method` in `carried` (the body's
    `GEMINI_ONLY`), for the Gemini API, which has no HarmBlockMethod (Google answers a 400 for
    it). Dropped, the threshold would be read against another score than the one asked for: a
    different filter. So a Vertex AI deployment of the group serves it, else the caller has the
    400 naming the field."""
    if not isinstance(carried, Mapping):
        return None
    settings = carried.get(SAFETY_SETTINGS)
    for i, setting in enumerate(settings if isinstance(settings, list) else []):
        if isinstance(setting, Mapping) and setting.get("method") is not None:
            where = at(at_index(at(GEMINI_ONLY, SAFETY_SETTINGS), i), "method")
            return M.unsupported(
                f"{where}: a safety setting's `method` (HarmBlockMethod) is Vertex AI's; the "
                "Gemini API has none (a Vertex AI deployment takes it)",
                where,
            )
    return None


def mapped_config(body: Mapping[str, Any]) -> JsonObject:
    """The generationConfig mapped from OpenAI's fields."""
    # A null (the SDK's None) is unset, as OpenAI reads it.
    config = {native: body[key] for key, native in CONFIG_KEYS.items() if body.get(key) is not None}
    if config.get("logprobs") == 0:  # no alternatives: none asked (Vertex AI takes 1 to 20)
        del config["logprobs"]
    limit = M.max_tokens(body)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stops = M.stop_list(body)
    if stops:
        config["stopSequences"] = stops
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") != "text":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema is not None:
            config["responseJsonSchema"] = schema
    return config


def _unnulled(given: Any) -> Any:
    """The caller's own generationConfig without its nulls (the SDK's None: unset, as OpenAI
    reads it), through nested objects, an object left empty dropped; a schema is kept whole."""
    if not isinstance(given, dict):
        return given
    out = {}
    for key, value in given.items():
        kept = value if key in _SCHEMAS else _unnulled(value)
        if kept is not None:  # an object left empty by its nulls is one too
            out[key] = kept
    return out or None


def refined_config(ours: JsonObject, theirs: Mapping[str, Any]) -> JsonObject:
    """Our generationConfig (mapped from OpenAI's fields) refined by the caller's own (from its
    extras): merged field by field, through nested objects too (`thinkingConfig`…), the
    caller's value winning wherever both set one. A schema (`responseSchema`,
    `responseJsonSchema`) or a list is one value, taken whole; and a caller's `responseSchema`
    replaces the `responseJsonSchema` of its `response_format` (Gemini takes one of the two)."""
    out = dict(ours)
    if "responseSchema" in theirs:
        out.pop("responseJsonSchema", None)
    for key, value in theirs.items():
        mine = out.get(key)
        if isinstance(mine, dict) and isinstance(value, dict) and key not in _SCHEMAS:
            out[key] = refined_config(mine, value)
        else:
            out[key] = value
    return out
