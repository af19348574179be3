"""A Gemini user turn's parts as OpenAI content parts, and Gemini's schemas as JSON Schema.

Followed:
- Part (text, inlineData, fileData): https://ai.google.dev/api/caching#Part
- Schema (the OpenAPI subset with upper-case types, `nullable`; the SDK writes a function's
  parameters so): https://ai.google.dev/api/caching#Schema
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import at, expect_base64, expect_object, expect_str
from clients.codec.gemini._names import SCHEMA_MAPS, check_depth
from clients.codec.gemini._tables import AUDIO_TYPES
from clients.errors import InvalidRequestError

__all__ = ["json_schema", "user_part"]

JsonObject = dict[str, Any]

# Gemini's audio MIME types that OpenAI's input_audio takes (its `format`): wav and mp3, by
# Gemini's names for them (`AUDIO_TYPES`) and their common aliases.
_AUDIO_FORMATS = {AUDIO_TYPES[name]: name for name in ("wav", "mp3")} | {
    "audio/x-wav": "wav",
    "audio/mpeg": "mp3",
}
# Schema keys holding one schema, and those holding a list or a map of them.
_SCHEMA = ("items", "additionalProperties", "not")
_SCHEMAS = ("anyOf", "oneOf", "allOf", "prefixItems")
# Gemini's own keys, with no JSON Schema meaning.
_GEMINI_ONLY = frozenset({"propertyOrdering", "nullable"})


def user_part(part: JsonObject, path: str) -> JsonObject:
    """A user part (not a functionResponse) as an OpenAI content part."""
    if "text" in part:
        return {"type": "text", "text": expect_str(part["text"], at(path, "text"))}
    if "inlineData" in part:
        where = at(path, "inlineData")
        blob = expect_object(part["inlineData"], where)
        mime = expect_str(blob.get("mimeType"), at(where, "mimeType"))
        data = expect_base64(blob.get("data"), at(where, "data"))
        if mime.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
        if mime in _AUDIO_FORMATS:
            return {
                "type": "input_audio",
                "input_audio": {"data": data, "format": _AUDIO_FORMATS[mime]},
            }
        return {"type": "file", "file": {"file_data": f"data:{mime};base64,{data}"}}
    if "fileData" in part:
        where = at(path, "fileData")
        file = expect_object(part["fileData"], where)
        uri = expect_str(file.get("fileUri"), at(where, "fileUri"))
        mime = str(file.get("mimeType") or "")
        if mime.startswith("image/") and uri.startswith(("https://", "http://")):
            return {"type": "image_url", "image_url": {"url": uri}}
        raise InvalidRequestError(
            f"{where}: only images by an http(s) URL are supported by this gateway (files "
            "uploaded to Google's File API are not); send other media as inlineData",
            where,
        )
    kinds = ", ".join(sorted(part)) or "nothing"
    raise InvalidRequestError(
        f"{path}: a part with {kinds} is not supported by this gateway (text, inlineData, "
        "fileData, functionCall, functionResponse are)",
        path,
    )


def json_schema(schema: Any, depth: int = 0) -> Any:
    """Gemini's Schema as JSON Schema: types lower-case (`OBJECT` → `object`), `nullable`
    as a type that also takes null; JSON Schema (`parametersJsonSchema`) goes through as it is.
    Read level by level, so bounded as a body's nesting is (a 400 past it, not the stack's end:
    a JSON Schema is the caller's own JSON, whose depth the names' walk does not read)."""
    if not isinstance(schema, dict):
        return schema
    check_depth(depth)
    out: JsonObject = {k: v for k, v in schema.items() if k not in _GEMINI_ONLY}
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = kind.lower()
        if schema.get("nullable") is True:
            out["type"] = [kind.lower(), "null"]
    for key in SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: json_schema(v, depth + 1) for k, v in out[key].items()}
    for key in _SCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = json_schema(out[key], depth + 1)
    for key in _SCHEMAS:
        if isinstance(out.get(key), list):
            out[key] = [json_schema(v, depth + 1) for v in out[key]]
    return out
