"""Gemini API words the edge's entrance shares between its answers, its streams and its errors.

Followed:
- Candidate.FinishReason: https://ai.google.dev/api/generate-content#FinishReason
- Errors (`{"error": {"code", "message", "status"}}`, status a google.rpc.Code name):
  https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes
"""

from __future__ import annotations

from typing import Any

from clients.errors import grpc_code_for_http

__all__ = ["FINISH_REASON_BY_FINISH", "METHODS", "gemini_error", "gemini_status"]

# The methods a model answers (`POST …/models/{model}:{method}`), as a Model lists them.
METHODS = (
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
)

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
