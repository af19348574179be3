"""JSON mechanics shared by every codec module: typed reads with OpenAI-style paths, and extras.

The lossless rule, applied to every object the codec models:

* a key the proto models goes into its typed field;
* every other key, and a modelled key whose value the typed field cannot tell from "absent"
  (JSON ``null``; ``""``, ``0`` or ``[]`` in a field without presence), goes into the object's
  ``extra_json`` verbatim (:func:`split_known`, :func:`stash`);
* on the way back, ``extra_json`` is merged into the typed keys and the typed keys win
  (:func:`merge_extra`), so a router that rewrites a typed field (``model``) is never overridden
  by a stale extra.

Sub-objects whose message has no ``extra_json`` (``function``, ``stream_options`` ...) are kept
typed only when they round-trip exactly; otherwise the whole value goes to the parent's extra.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar, cast

import orjson
from google.protobuf.internal import api_implementation
from google.protobuf.message import Message

from clients.errors import InvalidRequestError, UpstreamFormatError

_Enum = TypeVar("_Enum", bound=int)  # a generated enum's ValueType
_INT64 = (-(2**63), 2**63 - 1)
# How far below a body's root the codec's JSON may be placed (a Responses stream event's
# annotation is about ten levels down); a text shorter than `_MAYBE_DEEP` cannot nest so deep
# that it would not be written there (254 levels, each two brackets).
_WRITTEN_DEPTH = 254
_PLACED_DEPTH = 16
_MAYBE_DEEP = 2 * (_WRITTEN_DEPTH - _PLACED_DEPTH)
_INT32 = (-(2**31), 2**31 - 1)


def at(path: str, key: str) -> str:
    """``messages[2]`` + ``content`` → ``messages[2].content``; the top level has an empty path."""
    return f"{path}.{key}" if path else key


def at_index(path: str, index: int) -> str:
    return f"{path}[{index}]"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def fail_type(path: str, expected: str, value: Any) -> NoReturn:
    """Raise the error OpenAI itself gives for a wrong type, naming the JSON path."""
    raise InvalidRequestError(
        f"Invalid type for '{path or 'body'}': expected {expected}, "
        f"but got {_kind(value)} instead.",
        param=path or None,
    )


def missing(path: str) -> NoReturn:
    raise InvalidRequestError(f"Missing required parameter: '{path}'.", param=path)


def invalid_value(path: str, value: Any, supported: Iterable[str]) -> NoReturn:
    choices = ", ".join(f"'{name}'" for name in supported)
    raise InvalidRequestError(
        f"Invalid value for '{path}': {value!r}. Supported values are: {choices}.", param=path
    )


def enum_name(names: Mapping[_Enum, str], value: _Enum, path: str) -> str:
    """The JSON string of an enum value; a proto built elsewhere may hold a value we do not know."""
    name = names.get(value)
    if name is None:
        raise InvalidRequestError(f"Invalid enum value {value} in '{path}'.", param=path)
    return name


def expect_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail_type(path, "an object", value)
    return value


def expect_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        fail_type(path, "an array", value)
    return value


def expect_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        fail_type(path, "a string", value)
    return value


def expect_base64(value: Any, path: str) -> str:
    """Bytes as JSON writes them: base64 in either alphabet (`-` and `_` are the URL-safe
    one's; google-genai writes it), padded or not, line breaks skipped (Go's decoder, Ollama's,
    skips them), as standard padded base64, what a data URL and OpenAI's `input_audio.data`
    hold (an OpenAI, Anthropic or Bedrock deployment refuses `-` and `_`). Text that is not
    base64 is refused, named, as Gemini and Ollama refuse it: no deployment is sent it."""
    data = expect_str(value, path)
    if "\n" in data or "\r" in data:
        data = data.replace("\r", "").replace("\n", "")
    if "-" in data or "_" in data:
        data = data.replace("-", "+").replace("_", "/")
    data += "=" * (-len(data) % 4)
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or text that is not even ASCII
        raise InvalidRequestError(
            f"Invalid value for '{path}': not base64 data ({exc}).", param=path
        ) from None
    return data


def expect_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        fail_type(path, "a boolean", value)
    return value


# A form's `stream` is text: the SDK's "true", curl's `-F stream=True` alike.
_FORM_FLAGS = {"true": True, "false": False}


def asks_stream(fields: Mapping[str, Any]) -> bool:
    """Whether a media body (a rerank's too) asks for events: `stream` true as JSON, or as a
    form's text in any case. One reading for the edge that picks Media or MediaStream, the
    router that checks the choice and the rerank check (here, where `_media` and `_rerank` both
    read it). Raises InvalidRequestError for a `stream` that is no boolean."""
    value = fields.get("stream")
    if value is None or type(value) is bool:
        return bool(value)
    flag = _FORM_FLAGS.get(value.strip().lower()) if isinstance(value, str) else None
    if flag is None:
        raise InvalidRequestError(f"`stream` must be a boolean, not {value!r:.40}.", param="stream")
    return flag


def expect_int(value: Any, path: str) -> int:
    """An int64. ``True`` is not an integer here, whatever Python thinks."""
    # The common case in one frame (every chunk has two): an int, not a bool, in range.
    if type(value) is int and _INT64[0] <= value <= _INT64[1]:
        return value
    return _ranged_int(value, path, _INT64)


def expect_int32(value: Any, path: str) -> int:
    if type(value) is int and _INT32[0] <= value <= _INT32[1]:
        return value
    return _ranged_int(value, path, _INT32)


def _ranged_int(value: Any, path: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail_type(path, "an integer", value)
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidRequestError(
            f"Invalid value for '{path}': integer out of range ({value}).", param=path
        )
    return value


def expect_number(value: Any, path: str) -> float:
    """A double field. A JSON integer is accepted and comes back as a float (same JSON number).

    NaN and the infinities are refused: JSON has no such numbers (orjson would write `null`
    upstream), though a Python dict or another language's protobuf can hold them."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail_type(path, "a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRequestError(
            f"Invalid value for '{path}': {number}. It must be a finite number.", param=path
        )
    return number


def split_known(
    obj: dict[str, Any], known: frozenset[str], *, nullable: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an object into (modelled keys, extra keys).

    A modelled key whose value is ``null`` goes to the extras, since proto presence cannot say
    "present and null", unless it is in ``nullable`` (its typed form emits ``null`` itself, like a
    choice's ``finish_reason``); then it is dropped from both.
    """
    typed: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in known:
            extra[key] = value
        elif value is not None:
            typed[key] = value
        elif key not in nullable:
            extra[key] = value
    return typed, extra


def check_placeable(value: Any, size: int, below: int = _PLACED_DEPTH) -> None:
    """Raise orjson.JSONEncodeError unless `value` (its JSON text `size` long) can still be
    written where it goes: JSON is read 1024 levels deep but written (orjson) to 254, and a
    field's JSON goes back into a body, an answer, a stream event or a list page up to
    `below` levels down (`_PLACED_DEPTH` for a request's field; less for a whole object kept,
    whose fields were given their room when they were checked). Only a text long enough to
    nest that deep is written again to see."""
    if size < 2 * (_WRITTEN_DEPTH - below):
        return
    for _ in range(below):
        value = [value]
    orjson.dumps(value)


def unwritable(exc: orjson.JSONEncodeError) -> str:
    """Why a value read as JSON cannot be written, in the API's words: nested too deep (the
    writer's "Recursion limit reached", not a phrase to show callers), else the writer's own
    reason (an integer past 64 bits, a key not a string)."""
    if "Recursion limit" in str(exc):
        return "it nests too deep to be sent on as JSON"
    return str(exc)


def dump_json(value: Any, path: str) -> str:
    """Compact JSON text, as the proto's ``*_json`` fields hold it."""
    try:
        text = orjson.dumps(value)
        if len(text) >= _MAYBE_DEEP:  # the usual short one: a len(), not a call
            check_placeable(value, len(text))
        return text.decode()
    except orjson.JSONEncodeError as exc:
        message = f"Invalid value for '{path or 'body'}': {unwritable(exc)}."
        raise InvalidRequestError(message, param=path or None) from exc


def dump_extra(extra: dict[str, Any], path: str) -> str:
    """The ``extra_json`` for an object's leftover keys; empty when there are none."""
    if not extra:
        return ""
    try:
        text = orjson.dumps(extra)
        if len(text) >= _MAYBE_DEEP:
            check_placeable(extra, len(text))
        return text.decode()
    except orjson.JSONEncodeError:
        for key, value in extra.items():  # name the key that cannot be JSON (an int > 64 bits)
            dump_json(value, at(path, key))
        return dump_json(extra, path)  # a non-string key: reported for the object itself


def json_problem(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    """Why orjson refused `raw`: a text in another encoding than UTF-8 (JSON's only one; a
    declared charset is not read) by its first byte that is not, where orjson's words
    ("surrogates not allowed" at line 1 column 1) would not say it. Asked of a refused text
    alone: a valid one costs nothing."""
    try:
        raw.decode()
    except UnicodeDecodeError as bad:
        return (
            f"it is not UTF-8 (byte 0x{raw[bad.start]:02X} at offset {bad.start} is no UTF-8 "
            "character's). Send JSON encoded as UTF-8."
        )
    return str(exc)


def load_json(text: str, path: str) -> Any:
    """Parse a ``*_json`` field of a proto (which another-language caller may have built)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"Invalid JSON in '{path}': {exc}.", param=path) from exc


def merge_extra(
    out: dict[str, Any],
    extra_json: str,
    path: str,
    *,
    reserved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Add the keys of ``extra_json`` to an object built from typed fields; typed keys win.

    ``reserved`` keys (key -> why) may not come from ``extra_json``: ``stream``, which the
    router writes, and the fields it bounds. The parse side never puts one there."""
    if not extra_json:
        return out
    try:  # parsed here; the path is written only for an error (every chunk has two extras)
        extra = orjson.loads(extra_json)
    except orjson.JSONDecodeError:
        extra = load_json(extra_json, at(path, "extra_json"))  # raises, naming the path
    if not isinstance(extra, dict):
        fail_type(at(path, "extra_json"), "a JSON object", extra)
    if reserved:
        for key in reserved.keys() & extra.keys():
            where = at(at(path, "extra_json"), key)
            raise InvalidRequestError(
                f"'{key}' may not be set in extra_json: {reserved[key]}.", param=where
            )
    for key, value in extra.items():
        out.setdefault(key, value)
    return out


def assign(child: Message, value: Message) -> None:
    """Set a sub-message field to ``value``, marking it present even when ``value`` is empty."""
    child.SetInParent()
    child.CopyFrom(value)


def _has_field(message: Message, field: str) -> bool:
    return message.HasField(field)


def _field_test() -> Callable[[Message, str], bool]:
    """upb's `HasField` itself where every message inherits it: a C call without a Python
    frame around it (the codec tests ~30 fields a unary call, ~3 a chunk); otherwise each
    message's own (`PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`)."""
    if api_implementation.Type() != "upb":
        return _has_field
    from google._upb._message import Message as UpbMessage

    return cast(Callable[[Message, str], bool], UpbMessage.HasField)


# ``HasField`` for a field named at run time (the generated stubs only take literals).
has = _field_test()


@contextmanager
def upstream_format(what: str) -> Iterator[None]:
    """Report a malformed upstream body as :class:`UpstreamFormatError`: not the caller's fault."""
    try:
        yield
    except InvalidRequestError as exc:
        raise malformed_upstream(what, exc) from exc


def malformed_upstream(what: str, exc: InvalidRequestError) -> UpstreamFormatError:
    """`upstream_format`'s error, for the parsers of every chunk and answer, which catch it
    themselves (a `try` costs nothing until it catches; the context manager, a generator and
    four calls per chunk)."""
    where = f" at '{exc.param}'" if exc.param else ""
    return UpstreamFormatError(f"Malformed upstream {what}{where}: {exc.message}", path=exc.param)
