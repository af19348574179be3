"""OpenAI ``chat.completion`` and ``chat.completion.chunk`` objects ⇄ protos.

The router parses upstream bodies with the ``*_from_openai`` functions (a malformed body raises
:class:`UpstreamFormatError`, which the router classifies); the edge writes the ``*_to_openai``
form back to HTTP callers. ``object`` is implied by the message type and always written.

``id``, ``created``, ``model``, ``choices``, a choice's ``index`` and ``finish_reason``, and the
token counts of a usage object are required by OpenAI and always written (``finish_reason: null``
while a stream is running). Everything else is written only when it was present.
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

from clients.codec._json import (
    assign,
    at,
    at_index,
    dump_extra,
    dump_json,
    enum_name,
    expect_int,
    expect_int32,
    expect_list,
    expect_object,
    expect_str,
    has,
    load_json,
    malformed_upstream,
    merge_extra,
    split_known,
)
from clients.codec._messages import message_from_openai, message_to_openai
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

_FINISH: dict[str, chat_pb2.FinishReason.ValueType] = {
    "stop": chat_pb2.FINISH_REASON_STOP,
    "length": chat_pb2.FINISH_REASON_LENGTH,
    "tool_calls": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "content_filter": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "function_call": chat_pb2.FINISH_REASON_FUNCTION_CALL,
}
_FINISH_NAMES = {value: name for name, value in _FINISH.items()}
# Finish reasons OpenAI-compatible servers say in words of their own for one OpenAI has, which
# callers test for: Mistral's `model_length` (its context window reached; its finish_reason enum:
# stop, length, model_length, error, tool_calls) is OpenAI's `length`.
_FINISH_ALIASES = {"model_length": "length"}
_HEADER_KEYS = frozenset({"id", "object", "created", "model", "choices", "usage"})
_COMPLETION_CHOICE_KEYS = frozenset({"index", "message", "finish_reason", "logprobs"})
_CHUNK_CHOICE_KEYS = frozenset({"index", "delta", "finish_reason", "logprobs"})
# The stop sequence that ended a choice (`matched_stop`) in OpenAI JSON: OpenAI-compatible
# servers' word for it (vLLM, SGLang: the string, or a stop token's id); OpenAI says none.
_MATCHED_STOP = "stop_reason"
_FINISH_NULLABLE = frozenset({"finish_reason"})
_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_USAGE_DETAILS = ("prompt_tokens_details", "completion_tokens_details")
_USAGE_KEYS = frozenset({*_USAGE_COUNTS, *_USAGE_DETAILS})
# `cache_write_tokens` as OpenRouter names prompt-cache writes; `cache_write_1h_tokens` (the
# part kept an hour, which Anthropic prices apart) is ours. Both absent when none were written.
_PROMPT_DETAIL_KEYS = (
    "cached_tokens",
    "audio_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
)
_COMPLETION_DETAIL_KEYS = (
    "reasoning_tokens",
    "audio_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)

_Envelope: TypeAlias = chat_pb2.ChatCompletion | chat_pb2.ChatCompletionChunk
_AnyChoice: TypeAlias = chat_pb2.Choice | chat_pb2.ChunkChoice


def chat_completion_from_openai(body: dict[str, Any]) -> chat_pb2.ChatCompletion:
    """Parse an upstream's ``chat.completion``; raises :class:`UpstreamFormatError`."""
    try:
        completion = chat_pb2.ChatCompletion()
        for i, value in enumerate(_read_envelope(completion, body)):
            path = at_index("choices", i)
            typed, extra = split_known(
                expect_object(value, path), _COMPLETION_CHOICE_KEYS, nullable=_FINISH_NULLABLE
            )
            choice = completion.choices.add()
            if "message" in typed:
                message = choice.message
                message.SetInParent()  # present even when empty
                message_from_openai(
                    typed["message"], at(path, "message"), role_required=False, into=message
                )
            _read_choice(choice, typed, extra, path)
        return completion
    except InvalidRequestError as exc:
        raise malformed_upstream("chat.completion", exc) from exc


def chat_completion_to_openai(completion: chat_pb2.ChatCompletion) -> dict[str, Any]:
    choices = []
    for i, choice in enumerate(completion.choices):
        path = at_index("choices", i)
        out: dict[str, Any] = {"index": choice.index}
        if choice.HasField("message"):
            out["message"] = message_to_openai(
                choice.message, at(path, "message"), role_required=False
            )
        choices.append(_write_choice(out, choice, path))
    return _write_envelope(completion, "chat.completion", choices)


def chunk_from_openai(body: dict[str, Any]) -> chat_pb2.ChatCompletionChunk:
    """Parse an upstream's ``chat.completion.chunk``; raises :class:`UpstreamFormatError`."""
    try:
        chunk = chat_pb2.ChatCompletionChunk()
        for i, value in enumerate(_read_envelope(chunk, body)):
            path = at_index("choices", i)
            typed, extra = split_known(
                expect_object(value, path), _CHUNK_CHOICE_KEYS, nullable=_FINISH_NULLABLE
            )
            choice = chunk.choices.add()
            if "delta" in typed:
                delta = choice.delta
                delta.SetInParent()  # present even when empty
                message_from_openai(
                    typed["delta"], at(path, "delta"), role_required=False, into=delta
                )
            _read_choice(choice, typed, extra, path)
        return chunk
    except InvalidRequestError as exc:
        raise malformed_upstream("chat.completion.chunk", exc) from exc


def chunk_to_openai(chunk: chat_pb2.ChatCompletionChunk) -> dict[str, Any]:
    choices = []
    for i, choice in enumerate(chunk.choices):
        path = at_index("choices", i)
        out: dict[str, Any] = {"index": choice.index}
        if choice.HasField("delta"):
            out["delta"] = message_to_openai(choice.delta, at(path, "delta"), role_required=False)
        choices.append(_write_choice(out, choice, path))
    return _write_envelope(chunk, "chat.completion.chunk", choices)


def usage_from_openai(value: Any, path: str) -> chat_pb2.Usage:
    typed, extra = split_known(expect_object(value, path), _USAGE_KEYS)
    usage = chat_pb2.Usage()
    for key in _USAGE_COUNTS:
        if key in typed:
            setattr(usage, key, expect_int(typed[key], at(path, key)))
    for key, detail_keys in zip(
        _USAGE_DETAILS, (_PROMPT_DETAIL_KEYS, _COMPLETION_DETAIL_KEYS), strict=True
    ):
        if key in typed:
            details = getattr(usage, key)
            _read_details(details, typed[key], at(path, key), detail_keys)
    usage.extra_json = dump_extra(extra, path)
    return usage


def usage_to_openai(usage: chat_pb2.Usage, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {key: getattr(usage, key) for key in _USAGE_COUNTS}
    for key, detail_keys in zip(
        _USAGE_DETAILS, (_PROMPT_DETAIL_KEYS, _COMPLETION_DETAIL_KEYS), strict=True
    ):
        if has(usage, key):
            details = getattr(usage, key)
            written = {k: getattr(details, k) for k in detail_keys if has(details, k)}
            out[key] = merge_extra(written, details.extra_json, at(path, key))
    return merge_extra(out, usage.extra_json, path)


def _read_details(
    details: chat_pb2.PromptTokensDetails | chat_pb2.CompletionTokensDetails,
    value: Any,
    path: str,
    keys: tuple[str, ...],
) -> None:
    typed, extra = split_known(expect_object(value, path), frozenset(keys))
    details.SetInParent()
    for key in keys:
        if key in typed:
            setattr(details, key, expect_int(typed[key], at(path, key)))
    details.extra_json = dump_extra(extra, path)


def _read_envelope(target: _Envelope, body: Any) -> list[Any]:
    """Fill the keys a completion and a chunk share; returns the raw choices to parse."""
    typed, extra = split_known(expect_object(body, ""), _HEADER_KEYS)
    typed.pop("object", None)
    extra.pop("object", None)
    if "id" in typed:
        target.id = expect_str(typed["id"], "id")
    if "created" in typed:
        created = typed["created"]
        # Some OpenAI-compatible servers send fractional seconds; the whole seconds are the time.
        if isinstance(created, float) and math.isfinite(created):
            created = int(created)
        target.created = expect_int(created, "created")
    if "model" in typed:
        target.model = expect_str(typed["model"], "model")
    if "usage" in typed:
        assign(target.usage, usage_from_openai(typed["usage"], "usage"))
    target.extra_json = dump_extra(extra, "")
    return expect_list(typed.get("choices", []), "choices")


def _write_envelope(source: _Envelope, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": source.id,
        "object": kind,
        "created": source.created,
        "model": source.model,
        "choices": choices,
    }
    if source.HasField("usage"):
        out["usage"] = usage_to_openai(source.usage, "usage")
    return merge_extra(out, source.extra_json, "")


def _read_choice(
    choice: _AnyChoice, typed: dict[str, Any], extra: dict[str, Any], path: str
) -> None:
    if "index" in typed:
        choice.index = expect_int32(typed["index"], at(path, "index"))
    if "finish_reason" in typed:
        raw = expect_str(typed["finish_reason"], at(path, "finish_reason"))
        raw = _FINISH_ALIASES.get(raw, raw)
        choice.finish_reason = _FINISH.get(raw, chat_pb2.FINISH_REASON_OTHER)
        choice.finish_reason_raw = raw
    if "logprobs" in typed:  # Any JSON: providers disagree on its shape; it is only passed on.
        choice.logprobs_json = dump_json(typed["logprobs"], at(path, "logprobs"))
    if isinstance(extra.get(_MATCHED_STOP), str):  # vLLM's token id (an int) stays extra
        choice.matched_stop = extra.pop(_MATCHED_STOP)
    choice.extra_json = dump_extra(extra, path)


def _write_choice(out: dict[str, Any], choice: _AnyChoice, path: str) -> dict[str, Any]:
    out["finish_reason"] = _finish_reason_to_openai(choice, path)
    if choice.logprobs_json:
        out["logprobs"] = load_json(choice.logprobs_json, at(path, "logprobs_json"))
    if choice.HasField("matched_stop"):
        out[_MATCHED_STOP] = choice.matched_stop
    return merge_extra(out, choice.extra_json, path)


def _finish_reason_to_openai(choice: _AnyChoice, path: str) -> str | None:
    """The raw upstream string when there is one, else the enum's name; unspecified is null."""
    if choice.finish_reason_raw:
        return choice.finish_reason_raw
    if choice.finish_reason in (chat_pb2.FINISH_REASON_UNSPECIFIED, chat_pb2.FINISH_REASON_OTHER):
        return None
    return enum_name(_FINISH_NAMES, choice.finish_reason, at(path, "finish_reason"))
