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
    chunks: list[chat_pb2.ChatCompletionChunk], asked: bool
) -> list[chat_pb2.ChatCompletionChunk]:
    """The chunks the caller reads: as they are when it asked for usage; else without OpenAI's
    usage chunk (no choices, the usage), without a usage some other chunk carries, and without
    the `"usage": null` an OpenAI upstream asked for usage writes on every other chunk (kept in
    its extras): what OpenAI streams to a caller who did not ask."""
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
        if _USAGE_KEY in chunk.extra_json:
            chunk.extra_json = _without_usage(chunk.extra_json)
        shown.append(chunk)
    return shown


_USAGE_KEY = '"usage"'
# What an OpenAI upstream's chunks carry in their extras once asked for usage (compact JSON, as
# the codec writes extras; usage is the last key OpenAI writes): cut as text, per chunk of the
# hot path, rather than parsed and written again.
_ONLY_NULL_USAGE = '{"usage":null}'
_LAST_NULL_USAGE = ',"usage":null}'


def _without_usage(extra_json: str) -> str:
    if extra_json == _ONLY_NULL_USAGE:
        return ""
    if extra_json.endswith(_LAST_NULL_USAGE):
        return extra_json[: -len(_LAST_NULL_USAGE)] + "}"
    extra = orjson.loads(extra_json)
    extra.pop("usage", None)
    return orjson.dumps(extra).decode() if extra else ""
