"""An OpenAI `chat.completion` (as `chat_completion_to_openai` writes it) → a Gemini API
`GenerateContentResponse`; and the pieces its stream (`_stream`) shares.

Followed: https://ai.google.dev/api/generate-content#generatecontentresponse (candidates with
content role `model`, parts text / thought text / functionCall with an args object and its
thoughtSignature, finishReason, index; usageMetadata; modelVersion; responseId).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from clients.codec._said import said
from clients.codec.gemini._tables import (
    FILTERED_FINISH_REASONS,
    FINISH_REASON_BY_FINISH,
    thought_signature,
)

__all__ = [
    "BLOCK_REASONS",
    "blocked_to_gemini",
    "call_part",
    "finish_reason",
    "logprobs_to_gemini",
    "response_to_gemini",
    "text_parts",
    "usage_to_gemini",
]

JsonObject = dict[str, Any]

# PromptFeedback.BlockReason: https://ai.google.dev/api/generate-content#BlockReason, and
# Vertex AI's own two (https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/
# GenerateContentResponse#BlockedReason), which google-genai reads too.
BLOCK_REASONS = frozenset(
    {"SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY"}
    | {"MODEL_ARMOR", "JAILBREAK"}
)


def finish_reason(finish: Any) -> str:
    return FINISH_REASON_BY_FINISH.get(str(finish), "OTHER") if finish else "STOP"


def usage_to_gemini(usage: Mapping[str, Any] | None) -> JsonObject:
    """OpenAI's usage in Gemini's words: both count the cached prompt tokens in the prompt's,
    Gemini the thinking apart from the candidates'."""
    if not usage:
        return {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    thoughts = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    out: JsonObject = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": max(completion - thoughts, 0),
        "totalTokenCount": int(usage.get("total_tokens") or prompt + completion),
    }
    if cached:
        out["cachedContentTokenCount"] = cached
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def _args(arguments: str) -> JsonObject:
    """A tool call's arguments as functionCall `args` (an object): arguments that are not one
    (an answer cut off mid-call) give empty args."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def call_part(call_id: str, name: str, arguments: str, signature: str) -> JsonObject:
    """A functionCall part; its id is the call's (a Gemini upstream's, or the router's)."""
    part: JsonObject = {"functionCall": {"id": call_id, "name": name, "args": _args(arguments)}}
    if signature:
        part["thoughtSignature"] = signature
    return part


def text_parts(message: Mapping[str, Any], thoughts: bool) -> list[JsonObject]:
    """A message's (or a delta's) reasoning, as a thought part when `thoughts` were asked for
    (`includeThoughts`), and its text (or its refusal)."""
    parts: list[JsonObject] = []
    reasoning = message.get("reasoning_content")
    if thoughts and isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    text = said(message)  # a refusal too: Gemini has no other field for it
    if text:
        parts.append({"text": text})
    return parts


def _parts(message: Mapping[str, Any], thoughts: bool) -> list[JsonObject]:
    parts = text_parts(message, thoughts)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(
            call_part(
                str(call.get("id") or ""),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                thought_signature(call),
            )
        )
    return parts


def logprobs_to_gemini(logprobs: Any) -> JsonObject:
    """A choice's `logprobs` (OpenAI's, of its content tokens) as Gemini's `logprobsResult`
    and `avgLogprobs`; nothing when the choice has none."""
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(tokens, list) or not tokens:
        return {}
    chosen = [{"token": t.get("token"), "logProbability": t.get("logprob")} for t in tokens]
    top = [
        {
            "candidates": [
                {"token": c.get("token"), "logProbability": c.get("logprob")}
                for c in t.get("top_logprobs") or ()
            ]
        }
        for t in tokens
    ]
    average = sum(float(t.get("logprob") or 0) for t in tokens) / len(tokens)
    return {
        "logprobsResult": {"topCandidates": top, "chosenCandidates": chosen},
        "avgLogprobs": average,
    }


def response_to_gemini(completion: Mapping[str, Any], thoughts: bool = False) -> JsonObject:
    """The GenerateContentResponse for a chat completion: a candidate per choice, its
    reasoning a thought part when `thoughts` were asked for (`include_thoughts`)."""
    candidates = [
        {
            "content": {"role": "model", "parts": _parts(choice.get("message") or {}, thoughts)},
            "finishReason": finish_reason(choice.get("finish_reason")),
            "index": int(choice.get("index") or 0),
            **logprobs_to_gemini(choice.get("logprobs")),
        }
        for choice in completion.get("choices") or ()
    ]
    return {
        "candidates": candidates,
        "usageMetadata": usage_to_gemini(completion.get("usage")),
        "modelVersion": str(completion.get("model") or ""),
        "responseId": str(completion.get("id") or ""),
    }


def blocked_to_gemini(
    error: Mapping[str, Any] | None, message: str, model: str, prompt_tokens: int
) -> JsonObject:
    """The GenerateContentResponse of a request a content filter refused (the router's
    CONTENT_FILTERED error, `error` the upstream's as passed on), as Gemini says it. An answer
    a Gemini deployment withheld whole is its candidate, ending with the filter's finishReason
    (as Gemini's `provider_error` says it). Else the prompt was refused: no candidates, its
    `promptFeedback.blockReason` (a Gemini upstream's own, when it is one; another provider's
    refusal is SAFETY) and why. The prompt's tokens are the router's estimate: no upstream
    counted them."""
    said = error.get("provider_error") if error else None
    said = said if isinstance(said, Mapping) else {}
    usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    withheld = [c for c in said.get("candidates") or () if isinstance(c, Mapping)]
    if withheld:
        candidates = [_withheld(candidate) for candidate in withheld]
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model}
    feedback = said.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, Mapping) else "SAFETY"
    reason = reason if reason in BLOCK_REASONS else "OTHER"
    blocked = {"blockReason": reason, "blockReasonMessage": message}
    return {"promptFeedback": blocked, "usageMetadata": usage, "modelVersion": model}


def _withheld(candidate: Mapping[str, Any]) -> JsonObject:
    """A candidate a filter withheld whole: no content, its finishReason (one of the filter's)
    and finishMessage."""
    reason = candidate.get("finishReason")
    out: JsonObject = {"finishReason": reason if reason in FILTERED_FINISH_REASONS else "SAFETY"}
    if isinstance(candidate.get("finishMessage"), str):
        out["finishMessage"] = candidate["finishMessage"]
    index = candidate.get("index")
    out["index"] = index if isinstance(index, int) else 0
    return out
