"""A Gemini API body's field names as the codec reads them: lowerCamelCase.

Google's JSON parser takes a field by its proto name too (`system_instruction`,
`inline_data.mime_type`, `generation_config.max_output_tokens`), and callers send them so:
Google's own curl examples do, and google-genai sends a thinkingConfig so. A name is a field's
only where the value is a message: the values that are the caller's own JSON keep their keys
(a functionCall's `args`, a functionResponse's `response`, a JSON Schema, a Schema's
`example` or `default`, and what JSON Schema holds as values: `const`, `enum`, `examples`), and
so do the names a schema's maps are keyed by: its `properties`, Vertex's `$defs` (a `$ref`
names them), and JSON Schema's other maps (a schema goes on as JSON Schema, unknown keys too).

Followed: https://protobuf.dev/programming-guides/json/ (a parser accepts the lowerCamelCase
name and the original proto field name).
"""

from __future__ import annotations

from typing import Any

from clients.errors import InvalidRequestError

__all__ = ["MAX_DEPTH", "SCHEMA_MAPS", "camel_case", "check_depth"]

# Fields whose value is the caller's own JSON (google.protobuf.Struct or Value): kept whole.
# (`response` is also a FunctionDeclaration's Schema, which the codec does not read.)
_OWN_JSON = frozenset(
    {"args", "response", "parametersJsonSchema", "responseJsonSchema", "example", "default"}
    | {"const", "enum", "examples"}
)
# A schema's maps: their keys are the caller's names, their values schemas.
SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_MAPS = frozenset(SCHEMA_MAPS)
# How deep a body's messages and lists may nest: what Google's proto parser reads (its
# recursion limit, 100); deeper would exhaust Python's stack here (a 500, not a 400).
MAX_DEPTH = 100


def camel_case(value: Any) -> Any:
    """`value` with every field name lowerCamelCase (a name given both ways: 400; a body
    nested deeper than Google's parser reads, `MAX_DEPTH`: 400)."""
    return _walk(value, 0)


def check_depth(depth: int) -> None:
    """A 400 for a value `depth` levels deep, past `MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        message = f"The body is nested more than {MAX_DEPTH} levels deep."
        raise InvalidRequestError(message)


def _walk(value: Any, depth: int) -> Any:
    check_depth(depth)
    if isinstance(value, list):
        return [_walk(item, depth + 1) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # a field's name → the name the caller gave it
    for key, item in value.items():
        name = _camel(key)
        if name in given:
            message = f"{name}: given twice, as {given[name]} and as {key}"
            raise InvalidRequestError(message, name)
        given[name] = key
        if name in _OWN_JSON:
            out[name] = item
        elif name in _MAPS and isinstance(item, dict):
            out[name] = {k: _walk(v, depth + 2) for k, v in item.items()}
        else:
            out[name] = _walk(item, depth + 1)
    return out


def _camel(name: str) -> str:
    if "_" not in name.strip("_"):
        return name
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)
