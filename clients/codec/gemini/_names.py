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
_NESTED = (dict, list)


def camel_case(value: Any) -> Any:
    """`value` with every field name lowerCamelCase (a name given both ways: 400; a body
    nested deeper than Google's parser reads, `MAX_DEPTH`: 400). Only what changes is copied:
    a body in lowerCamelCase, the usual one, is read and given back as it is (issue #10)."""
    return _walk(value, 0) if isinstance(value, _NESTED) else value


def check_depth(depth: int) -> None:
    """A 400 for a value `depth` levels deep, past `MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        message = f"The body is nested more than {MAX_DEPTH} levels deep."
        raise InvalidRequestError(message)


def _walk(value: dict[str, Any] | list[Any], depth: int) -> Any:
    """`value` itself when no name in it changes, else a copy of what does."""
    check_depth(depth)
    if isinstance(value, dict):
        return _message(value, depth)
    out = value
    for i, item in enumerate(value):
        if isinstance(item, _NESTED):
            new = _walk(item, depth + 1)
            if new is not item:
                out = list(value) if out is value else out
                out[i] = new
    return out


def _message(value: dict[str, Any], depth: int) -> dict[str, Any]:
    names: dict[str, str] = {}  # a name as the caller gave it → lowerCamelCase, where they differ
    values: dict[str, Any] = {}  # a field's value, where it changed
    for key, item in value.items():
        name = _camel(key) if "_" in key else key
        if name != key:
            names[key] = name
        if name in _OWN_JSON or not isinstance(item, _NESTED):
            continue
        if name in _MAPS and isinstance(item, dict):
            new = _map(item, depth)
        else:
            new = _walk(item, depth + 1)
        if new is not item:
            values[key] = new
    if not names and not values:
        return value
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # a field's name → the name the caller gave it
    for key, item in value.items():
        name = names.get(key, key)
        if name in given:
            message = f"{name}: given twice, as {given[name]} and as {key}"
            raise InvalidRequestError(message, name)
        given[name] = key
        out[name] = values.get(key, item)
    return out


def _map(value: dict[str, Any], depth: int) -> dict[str, Any]:
    """A map's values with their names lowerCamelCase; its keys are the caller's, kept."""
    out = value
    for key, item in value.items():
        if isinstance(item, _NESTED):
            new = _walk(item, depth + 2)
            if new is not item:
                out = dict(value) if out is value else out
                out[key] = new
    return out


def _camel(name: str) -> str:
    if "_" not in name.strip("_"):
        return name
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)
