"""The error bodies the fake upstream answers with, as OpenAI words them."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

__all__ = [
    "context_length_body",
    "default_error_body",
    "default_wrapped_error",
    "responses_context_body",
]

# (type, code) per status, mirroring what OpenAI actually sends so error classifiers get real input.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def default_error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """OpenAI-shaped error body for `status` (5xx -> server_error)."""
    if status in _ERROR_KINDS:
        err_type, code = _ERROR_KINDS[status]
    elif status >= 500:
        err_type, code = "server_error", None
    else:
        err_type, code = "invalid_request_error", None
    if message is None:
        try:
            message = f"Fake upstream error: {HTTPStatus(status).phrase}"
        except ValueError:
            message = f"Fake upstream error: HTTP {status}"
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def default_wrapped_error() -> dict[str, Any]:
    return default_error_body(500, "The server had an error while processing your request.")


def context_length_body(window: int, prompt: int) -> dict[str, Any]:
    """OpenAI's 400 for a chat past the model's context window."""
    message = (
        f"This model's maximum context length is {window} tokens. However, your messages "
        f"resulted in {prompt} tokens. Please reduce the length of the messages."
    )
    error = {"message": message, "type": "invalid_request_error", "param": "messages"}
    return {"error": {**error, "code": "context_length_exceeded"}}


def responses_context_body() -> dict[str, Any]:
    """OpenAI's Responses API's 400 for an input past the model's context window."""
    message = (
        "Your input exceeds the context window of this model. Please adjust your input and try "
        "again."
    )
    error = {"message": message, "type": "invalid_request_error", "param": "input"}
    return {"error": {**error, "code": "context_length_exceeded"}}
