"""A stream's usage: always asked of the upstream (the accounting needs it), shown to the
caller only when it asked (`stream_options.include_usage`), as OpenAI's own streams do."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import chat_pb2

__all__ = ["as_asked", "asks_usage"]


def asks_usage(params: chat_pb2.ChatParams) -> bool:
    """Whether the caller asked for the usage chunk: `stream_options.include_usage`, typed, or
    in its extras when its stream_options had keys the typed field does not hold."""
    if params.HasField("stream_options"):
        return params.stream_options.include_usage
    if '"stream_options"' not in params.extra_json:  # the common case: nothing parsed
        return False
    options = orjson.loads(params.extra_json).get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def as_asked(
    chunks: list[chat_pb2.ChatCompletionChunk], asked: bool, added: bool = False
) -> list[chat_pb2.ChatCompletionChunk]:
    """The chunks the caller reads: as they are when it asked for usage; else without OpenAI's
    usage chunk (no choices, the usage), without a usage some other chunk carries, and without
    the `"usage": null` an OpenAI upstream asked for usage writes on every other chunk (kept in
    its extras): what OpenAI streams to a caller who did not ask. `added`: the router asked the
    upstream for the usage; then a chunk of no choices that carries nothing else (a server's
    usage chunk without the usage, before it or instead of it) is not the caller's either."""
    if asked:
        return chunks
    shown = []
    for chunk in chunks:
        if chunk.HasField("usage"):
            if not chunk.choices:
                continue
            bare = chat_pb2.ChatCompletionChunk()  # a copy: its usage went to the summary
            bare.CopyFrom(chunk)
            bare.ClearField("usage")
            chunk = bare
        elif added and not chunk.choices and _is_shell(chunk.extra_json):
            continue
        if _USAGE_KEY in chunk.extra_json:
            chunk.extra_json = _without_usage(chunk.extra_json)
        shown.append(chunk)
    return shown


# What every chunk of a stream may carry beside its choices (OpenAI's, OpenRouter's `provider`):
# a chunk of no choices with nothing but these says nothing to its caller.
_ENVELOPE = frozenset({"usage", "obfuscation", "system_fingerprint", "service_tier", "provider"})


def _is_shell(extra_json: str) -> bool:
    """Whether a chunk of no choices and no usage, with these extras, is only an envelope.
    Parsed: such a chunk comes once a stream, at most (Azure's opening annotation, which
    carries `prompt_filter_results`, is kept)."""
    if not extra_json:
        return True
    extra = orjson.loads(extra_json)
    return isinstance(extra, dict) and extra.keys() <= _ENVELOPE


_USAGE_KEY = '"usage"'
# What an OpenAI upstream's chunks carry in their extras once asked for usage (compact JSON, as
# the codec writes extras): `"usage":null`, the last key, or the last but OpenAI's
# `"obfuscation"` padding (a string of letters and digits, on every chunk since 2025). Cut as
# text, per chunk of the hot path, rather than parsed and written again.
_NULL_USAGE = '"usage":null'
_OBFUSCATION = ',"obfuscation":"'


def cut_as_text(extra_json: str) -> str | None:
    """`extra_json` without its top-level `"usage":null`, cut as text, when it is where OpenAI
    writes it; None when the extras must be parsed to find it (the slow path)."""
    head, found, tail = extra_json.rpartition(_NULL_USAGE)
    if not found or not _is_plain_tail(tail):
        return None
    if head == "{":  # the first key: what follows loses its comma
        return "" if tail == "}" else "{" + tail[1:]
    if head.endswith(","):
        return head[:-1] + tail
    return None


def _is_plain_tail(tail: str) -> bool:
    """`}` or `,"obfuscation":"<padding>"}`: a tail where a `"usage"` before it is a key of the
    top-level object (a nested object would close after it; a quote inside a string is escaped,
    so the padding, without `"` or `\\`, cannot hide one)."""
    if tail == "}":
        return True
    if not tail.startswith(_OBFUSCATION) or not tail.endswith('"}'):
        return False
    padding = tail[len(_OBFUSCATION) : -2]
    return '"' not in padding and "\\" not in padding


def _without_usage(extra_json: str) -> str:
    cut = cut_as_text(extra_json)
    if cut is not None:
        return cut
    extra = orjson.loads(extra_json)
    extra.pop("usage", None)
    return orjson.dumps(extra).decode() if extra else ""
