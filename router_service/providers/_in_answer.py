"""Failures an upstream reports inside an answer it had begun, for every adapter alike.

An answer that fails after its 200 (any chat stream's error event: Anthropic's `error` event, an
OpenAI-compatible chat stream's `{"error": ...}`, a Gemini stream's google.rpc status, through
`HttpAdapter.raise_if_failed_event`; a Bedrock stream's exception message; a failed Response of
OpenAI's Responses API, in a stream or whole) is classified as the same error before it would be
(`_classify`), then scoped here by what it says of the deployment (DESIGN.md §4):

- a rate limit is the key's (RATE_LIMITED: Bedrock's `throttlingException`, a Response failed
  with `rate_limit_exceeded`): cooled for that key and model, as its 429 is;
- an overloaded server is the deployment's (Anthropic's `overloaded_error`, OpenAI's
  `server_is_overloaded`, Bedrock's `serviceUnavailableException` / `modelNotReadyException`):
  the deployment is cooled briefly for everyone, as for its 529 or 503;
- any other server error is that one generation's (Anthropic's `api_error`, Bedrock's
  `modelStreamErrorException` / `internalServerException`, OpenAI's `server_error`, Gemini's
  `INTERNAL`): of no one's scope, the request goes on to the group's next, and the deployment
  is neither cooled nor counted as failing in the routing statistics for it.
"""

from __future__ import annotations

import re

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope

__all__ = ["in_answer"]

# Statuses and words that say the server is overloaded (529 is Anthropic's overloaded_error).
_OVERLOADED_STATUSES = frozenset({503, 529})
_OVERLOADED = re.compile(r"overload|unavailable|not ?ready")
_FIELDS = ("type", "code", "status", "__type", "message")


def in_answer(failure: UpstreamFailure) -> UpstreamFailure:
    """`failure`, reported inside an answer the upstream had begun, scoped as the module says:
    a server error that is not an overload becomes one answer's (Scope.NONE)."""
    if failure.outcome is Outcome.UPSTREAM_ERROR and not _overloaded(failure):
        failure.scope = Scope.NONE
    return failure


def _overloaded(failure: UpstreamFailure) -> bool:
    if failure.upstream_status in _OVERLOADED_STATUSES:
        return True
    error = failure.upstream_error or {}
    said = " ".join(str(error.get(field) or "") for field in _FIELDS).lower()
    return _OVERLOADED.search(said) is not None
