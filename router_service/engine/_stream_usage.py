"""A stream's usage: always asked of the upstream (the accounting needs it), shown to the
caller only when it asked (`stream_options.include_usage`), as OpenAI's own streams do."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import chat_pb2, router_service_pb2

StreamEvent = router_service_pb2.ChatStreamResponse

__all__ = ["as_asked", "asks_usage", "chunk_events"]


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
            cut = cut_as_text(chunk.extra_json)
            chunk.extra_json = _parsed_without_usage(chunk.extra_json) if cut is None else cut
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
# `"obfuscation"` padding (letters and digits, on every chunk since 2025). Cut as text, per
# chunk of the hot path, rather than parsed and written again.
_ONLY_NULL_USAGE = '{"usage":null}'
_LAST_NULL_USAGE = ',"usage":null}'
_NULL_USAGE = ',"usage":null'
_THEN_PADDING = ',"usage":null,"obfuscation":"'
_FIRST_PADDED = '{"usage":null,"obfuscation":"'


def cut_as_text(extra_json: str) -> str | None:
    """`extra_json` without its top-level `"usage":null`, cut as text, when it is where OpenAI
    writes it; None when the extras must be parsed to find it (the slow path)."""
    if extra_json.endswith(_LAST_NULL_USAGE):
        return extra_json[: -len(_LAST_NULL_USAGE)] + "}"
    if extra_json == _ONLY_NULL_USAGE:
        return ""
    # Before OpenAI's padding, the last key's value: the first quote after the padding's own
    # is then the one that closes it, last but the object's `}`, so the padding and the
    # `"usage":null` before it are keys of the top-level object (a nested object would close
    # after them; a quote inside a string is escaped, so `,"usage"` cannot be in one).
    at = extra_json.rfind(_THEN_PADDING)
    if at > 0:
        if extra_json.find('"', at + len(_THEN_PADDING)) != len(extra_json) - 2:
            return None
        return extra_json[:at] + extra_json[at + len(_NULL_USAGE) :]
    if extra_json.startswith(_FIRST_PADDED):
        if extra_json.find('"', len(_FIRST_PADDED)) != len(extra_json) - 2:
            return None
        return "{" + extra_json[len(_NULL_USAGE) + 1 :]  # after `{"usage":null,`
    return None


def _parsed_without_usage(extra_json: str) -> str:
    extra = orjson.loads(extra_json)
    extra.pop("usage", None)
    return orjson.dumps(extra).decode() if extra else ""


def chunk_events(
    chunks: list[chat_pb2.ChatCompletionChunk], batch: bool, shown: tuple[bool, bool]
) -> list[StreamEvent | chat_pb2.Usage]:
    """Chunks ready together as stream events: one `chunks` event when the caller takes batches
    and there are several, else a `chunk` event each; each usage goes first, for the summary
    (the caller's chunks hold it only when it asked: `shown`, `as_asked`'s asked and added)."""
    events: list[StreamEvent | chat_pb2.Usage] = [c.usage for c in chunks if c.HasField("usage")]
    chunks = as_asked(chunks, *shown)
    if batch and len(chunks) > 1:
        events.append(StreamEvent(chunks=router_service_pb2.ChunkBatch(chunks=chunks)))
    else:
        events += [StreamEvent(chunk=chunk) for chunk in chunks]
    return events
