"""A Response of OpenAI's Responses API as the chat completion it answers (for the deployments
called on it, whose request _responses_map.py maps): its message items' text parts joined (their
citations as chat's `annotations`, their logprobs as the choice's), function and custom tool
calls, reasoning summaries as `reasoning_content` (the items, with encrypted content, kept
apart), hosted tools' items where they came; its usage in chat's names, the finish reason of an
incomplete one (`incomplete_details.reason`), and the error of a failed one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._responses_custom import HOSTED_ITEMS, PRECEDES, REASONING_ITEMS
from clients.codec._responses_hosted import FOLLOWS, TEXT_AT, chat_annotations
from clients.codec._responses_hosted import HOSTED_ITEM_TYPES as HOSTED
from clients.codec._responses_output import INCOMPLETE_REASONS
from router_service.providers._mapping import (
    JsonObject,
    assistant_message,
    completion,
    tool_call,
    usage,
)
from router_service.providers._responses_custom import custom_answer_call, reasoning_kept
from router_service.providers._responses_logprobs import chat_logprobs, part_logprobs

__all__ = [
    "FINISH_BY_INCOMPLETE",
    "chat_usage",
    "completion_from_response",
    "failure_of",
    "failure_status",
    "finish_reason",
    "summary_text",
]

# The chat finish reason of a Response left incomplete, by `incomplete_details.reason`.
FINISH_BY_INCOMPLETE = {reason: finish for finish, reason in INCOMPLETE_REASONS.items()}


def chat_usage(counts: Mapping[str, Any] | None) -> JsonObject | None:
    """A Response's `usage` in the chat completion's names."""
    if not isinstance(counts, dict):
        return None
    inputs = counts.get("input_tokens_details") or {}
    outputs = counts.get("output_tokens_details") or {}
    return usage(
        int(counts.get("input_tokens") or 0),
        int(counts.get("output_tokens") or 0),
        total=counts.get("total_tokens"),
        cached=inputs.get("cached_tokens"),
        reasoning=outputs.get("reasoning_tokens"),
    )


def finish_reason(response: Mapping[str, Any], tool_calls: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details") or {}
        return FINISH_BY_INCOMPLETE.get(str(details.get("reason")), "length")
    return "tool_calls" if tool_calls else "stop"


def summary_text(item: Mapping[str, Any]) -> str:
    """A reasoning item's summary, its parts a paragraph each."""
    parts = item.get("summary") or ()
    return "\n\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def completion_from_response(response: Mapping[str, Any]) -> JsonObject:
    """The chat completion of a (finished) Response."""
    texts: list[str] = []
    refusals: list[str] = []  # structured outputs' refusal: the chat message's `refusal`
    reasoning: list[str] = []
    kept: list[JsonObject] = []  # reasoning items with their encrypted content (when asked)
    calls: list[JsonObject] = []
    hosted: list[JsonObject] = []  # hosted tools' items, whole, where they came
    annotations: list[JsonObject] = []  # of the text, in chat's form
    logprobs: list[Any] = []  # of the text, when asked
    for item in response.get("output") or ():
        kind = item.get("type")
        if kind in HOSTED:
            before = len(calls) + bool(any(texts) or refusals)
            at = {TEXT_AT: sum(map(len, texts))} if any(texts) else {}
            hosted.append({**item, PRECEDES: before, FOLLOWS: len(kept), **at})
        elif kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    annotations += chat_annotations(part, sum(map(len, texts)))
                    texts.append(str(part.get("text", "")))
                    logprobs += part_logprobs(part)
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal", "")))
        elif kind == "function_call":
            calls.append(tool_call(item["call_id"], item["name"], item.get("arguments") or ""))
        elif kind == "custom_tool_call":
            calls.append(custom_answer_call(item))
        elif kind == "reasoning":
            if summary_text(item):
                reasoning.append(summary_text(item))
            if item.get("encrypted_content") is not None:
                before = len(calls) + bool(any(texts) or refusals)  # output items before it
                kept.append({**reasoning_kept(item), PRECEDES: before})
    message = assistant_message("".join(texts), calls)
    if refusals:
        message["refusal"] = "".join(refusals)
        message["content"] = message["content"] or None  # as chat completions: null, not ""
    if reasoning:
        message["reasoning_content"] = "\n\n".join(reasoning)
    if kept:
        message[REASONING_ITEMS] = kept
    message.update({HOSTED_ITEMS: hosted} if hosted else {})
    message.update({"annotations": annotations} if annotations else {})
    out = completion(
        str(response["id"]),
        int(response.get("created_at") or 0),
        str(response.get("model", "")),
        message,
        finish_reason(response, bool(calls)),
        chat_usage(response.get("usage")),
    )
    out["choices"][0].update({"logprobs": chat_logprobs(logprobs)} if logprobs else {})
    return out


# A failed Response's codes that say the request was at fault (its prompt, an image it gave):
# the 400 chat completions answers them with. The others (server_error, rate_limit_exceeded,
# vector_store_timeout…) the classifier reads by their words.
_CALLERS_CODES = frozenset(
    {
        "invalid_prompt", "invalid_image", "invalid_image_format", "invalid_base64_image",
        "invalid_image_url", "image_too_large", "image_too_small", "image_parse_error",
        "invalid_image_mode", "image_file_too_large", "unsupported_image_media_type",
        "empty_image_file", "failed_to_download_image", "image_file_not_found",
    }
)  # fmt: skip


def failure_status(error: Mapping[str, Any]) -> int:
    """The HTTP status a failed Response's error stands for (it came in a 200): 400 for the
    caller's, else 200 (its code and words decide)."""
    return 400 if error.get("code") in _CALLERS_CODES else 200


def failure_of(response: Mapping[str, Any]) -> JsonObject | None:
    """The error object of a failed Response (`status: failed`), else None."""
    if response.get("status") != "failed":
        return None
    error = response.get("error")
    return dict(error) if isinstance(error, dict) else {"message": "response failed"}
