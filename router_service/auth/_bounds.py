"""What the router holds a request's fields to before it is counted (`server:`): output tokens,
choices, a rerank's documents, a pick's estimate. Each check raises InvalidRequestError naming
the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec import rerank_fields
from clients.switchboard.v1 import chat_pb2
from router_service.engine._tokens import native_bounds
from router_service.errors import InvalidRequestError

__all__ = [
    "MOST_CALL_TOKENS",
    "Bounds",
    "check_chat",
    "check_choices",
    "check_max_tokens",
    "check_pick",
    "check_rerank",
]

# Gemini's own names of `max_tokens` and `n`, as callers set them in extras.
_MAX_OUTPUT = "generationConfig.maxOutputTokens"
_CANDIDATES = "generationConfig.candidateCount"
# The most tokens one call may be said to take (a PickRoute's estimate, a ReportOutcome's
# count): ten million, past the largest context window and its answer. More (a sum over many
# calls, a stray int64) would fill the key's per-minute token window for every caller.
MOST_CALL_TOKENS = 10_000_000


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the router holds a request's fields to (`server:`)."""

    max_tokens: int  # `max_tokens_ceiling`
    max_n: int = 8  # `max_n`
    max_rerank_documents: int = 1000  # `max_rerank_documents`


def check_max_tokens(params: chat_pb2.ChatParams, ceiling: int) -> None:
    """`max_tokens` / `max_completion_tokens` between 1 and the router's ceiling, and Gemini's
    own `generationConfig.maxOutputTokens` in extras too (which the caller's extras set)."""
    for field in ("max_tokens", "max_completion_tokens"):
        if params.HasField(field):
            _check_range(field, getattr(params, field), ceiling)
    _check_range(_MAX_OUTPUT, native_bounds(params).max_output_tokens, ceiling)


def check_choices(params: chat_pb2.ChatParams, max_n: int) -> None:
    """`n` between 1 and the router's bound: each choice is generated (and paid for) upstream;
    Gemini's own `generationConfig.candidateCount` in extras too."""
    if params.HasField("n"):
        _check_range("n", params.n, max_n)
    _check_range(_CANDIDATES, native_bounds(params).candidates, max_n)


def _check_range(field: str, value: int | None, most: int) -> None:
    if value is not None and not 1 <= value <= most:
        raise InvalidRequestError(
            f"Invalid value for '{field}': {value}. It must be between 1 and {most}.",
            param=field,
            code="invalid_value",
        )


def check_chat(request: Any, bounds: Bounds) -> None:
    """A chat request's (ChatRequest, ChatStreamRequest) output tokens and choices."""
    check_max_tokens(request.params, bounds.max_tokens)
    check_choices(request.params, bounds.max_n)


def check_rerank(request: Any, bounds: Bounds) -> None:
    """A rerank's query, documents (at most `max_rerank_documents`) and counts; `params_json`
    that is no JSON object is `check_media`'s to refuse."""
    try:
        fields = orjson.loads(request.params.params_json or "{}")
    except orjson.JSONDecodeError:
        return
    if isinstance(fields, dict):
        rerank_fields(fields, max_documents=bounds.max_rerank_documents)


def check_pick(request: Any, bounds: Bounds) -> None:
    """A PickRoute's `estimated_tokens`: counted in the key's and the client's token windows,
    so one call's (0 to MOST_CALL_TOKENS), as a report's `total_tokens` is."""
    estimate = request.estimated_tokens
    if not 0 <= estimate <= MOST_CALL_TOKENS:
        raise InvalidRequestError(
            f"Invalid value for 'estimated_tokens': {estimate}. It must be between 0 and "
            f"{MOST_CALL_TOKENS} (one call's).",
            param="estimated_tokens",
            code="invalid_value",
        )
