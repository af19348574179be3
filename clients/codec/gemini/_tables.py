"""Gemini API words the edge's entrance shares between its answers, its streams and its errors.

Followed:
- Candidate.FinishReason: https://ai.google.dev/api/generate-content#FinishReason
- Errors (`{"error": {"code", "message", "status"}}`, status a google.rpc.Code name):
  https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
- GenerationConfig (responseLogprobs, logprobs), FunctionCallingConfig.Mode:
  https://ai.google.dev/api/generate-content
- Thought signatures: https://ai.google.dev/gemini-api/docs/thought-signatures
- ThinkingConfig (thinkingBudget: 0 off, -1 dynamic; thinkingLevel; includeThoughts):
  https://ai.google.dev/gemini-api/docs/thinking

The router's Gemini provider (OpenAI dialect → Gemini upstream,
`router_service/providers/_gemini_map.py`) and the edge's Gemini entrance (Gemini caller →
OpenAI dialect) read the same tables, each the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.errors import grpc_code_for_http

__all__ = [
    "AUDIO_TYPES",
    "CALLING_MODES",
    "CONFIG_KEYS",
    "EMBED_METHODS",
    "FILTERED_FINISH_REASONS",
    "FINISH_BY_FINISH_REASON",
    "FINISH_REASON_BY_FINISH",
    "METHODS",
    "THINKING_BUDGETS",
    "gemini_error",
    "gemini_status",
    "thought_signature",
]

# The methods a model answers (`POST …/models/{model}:{method}`), as a Model lists them.
METHODS = (
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
)
# Those of a model that serves embeddings.
EMBED_METHODS = ("embedContent", "batchEmbedContents", "countTokens")

# Candidate.FinishReason values that mean the output was withheld by a content policy.
FILTERED_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",  # Vertex AI's: the answer blocked by Model Armor
    }
)
# Gemini's finishReason → OpenAI's finish_reason (the filtered ones: content_filter).
FINISH_BY_FINISH_REASON = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "MALFORMED_FUNCTION_CALL": "stop",
}
# OpenAI's chat keys → generationConfig's, the same value.
CONFIG_KEYS = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "logprobs": "responseLogprobs",  # the chosen tokens' log probabilities (logprobsResult)
    "top_logprobs": "logprobs",  # the most likely tokens at each step, 0 to 20 as OpenAI's
}
# OpenAI's `reasoning_effort` → thinkingConfig.thinkingBudget, in order: the budgets Gemini's own
# OpenAI-compatible endpoint gives each effort (https://ai.google.dev/gemini-api/docs/openai).
THINKING_BUDGETS = {"none": 0, "low": 1024, "medium": 8192, "high": 24576}
# OpenAI's tool_choice → functionCallingConfig.mode.
CALLING_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
# input_audio `format` → Gemini's MIME type: OpenAI's two, and the others Gemini documents.
AUDIO_TYPES = {name: f"audio/{name}" for name in ("wav", "mp3", "aiff", "aac", "ogg", "flac")}
# OpenAI's finish_reason → Gemini's finishReason (a function call ends with STOP in Gemini).
FINISH_REASON_BY_FINISH = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def gemini_status(http_status: int) -> str:
    """The `status` Google's APIs give an HTTP status: the google.rpc.Code it stands for."""
    return str(grpc_code_for_http(http_status).name)


def gemini_error(http_status: int, message: str) -> dict[str, Any]:
    """Gemini's error object, as its responses and a failed stream's last chunk carry it; the
    google-genai SDK raises `ClientError` (4xx) or `ServerError` (5xx) on either."""
    return {
        "error": {"code": http_status, "message": message, "status": gemini_status(http_status)}
    }


def thought_signature(call: Mapping[str, Any]) -> str:
    """An OpenAI tool call's Gemini thought signature ("" when none), where Gemini's own
    OpenAI-compatible endpoint puts it: `extra_content.google.thought_signature`."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) else ""
