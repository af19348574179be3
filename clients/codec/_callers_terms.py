"""A router's refusal of a chat field, said of the field the caller set in its own API (the
legacy completions', the Responses', Gemini's), as that API's codec says its own refusals:
the same words from the edge (`http_edge._errors.in_callers_terms`) and from a batch's line."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

# Gemini's codec by package: `gemini_message` is imported as first read (clients/_lazy.py), so
# the edge loads Gemini's translation at its first Gemini call, not at start.
from clients.codec import gemini
from clients.errors import ErrorDetails

__all__ = ["said_in_callers_terms"]


def said_in_callers_terms(
    details: ErrorDetails, field_of: Callable[[str | None], str | None]
) -> ErrorDetails:
    """`details` with the OpenAI field a refusal of the router's own names (`max_tokens` above
    `server.max_tokens_ceiling`, a guardrail's block of `messages[0].content`…) said as
    `field_of` names it (its codec's: None for a field the caller wrote so); `details` itself
    when there is nothing to say otherwise. An upstream's refusal stays in its own words."""
    param = _routers_param(details)
    field = field_of(param)
    if field is None:
        return details
    message = gemini.gemini_message(details.message, param, field)
    upstream = details.upstream_error
    if upstream is not None:  # the router's words, in OpenAI's error shape
        upstream = {**upstream, "message": message, "param": field}
    return dataclasses.replace(
        details, message=message, openai_param=field, upstream_error=upstream
    )


def _routers_param(details: ErrorDetails) -> str | None:
    """The OpenAI field a refusal of the router's own names: its `openai_param`, or, for an
    input no deployment can take (UNSUPPORTED_INPUT that reached no upstream, said in OpenAI's
    error shape), that shape's `param`. None for an upstream's refusal (its own words)."""
    upstream = details.upstream_error
    if upstream is None:
        return details.openai_param
    if details.reason != "UNSUPPORTED_INPUT" or details.upstream_status is not None:
        return None
    param = upstream.get("param")
    return param if isinstance(param, str) else None
