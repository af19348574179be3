"""Bedrock's failures → Outcomes, by the exception type it names.

Bedrock answers an error with its HTTP status, `{"message": ...}` and the exception's name in
the `x-amzn-ErrorType` header (`ThrottlingException:http://internal.amazon.com/…`: the name is
before the first colon); a stream names it in its exception message's `:exception-type`
(`throttlingException`). Followed:
- Converse and ConverseStream errors and their statuses:
  https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors
  and https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
- What each means and what to do about it:
  https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html
- The errors every AWS API may answer (bad or expired credentials, signatures):
  https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html

Decisions the type alone does not make:
- AccessDeniedException is a key that may not use this model (model access not granted, an IAM
  policy scoped to other models): MODEL_DENIED for that key × model; when its message speaks of
  the credentials themselves (an API key, a token, a signature), AUTH_INVALID.
- ServiceQuotaExceededException ("exceeds the service quota for your account… resubmit your
  request later") is a per-model account quota over a time window, like a rate limit: the key ×
  model is cooled (RATE_LIMITED), not the key switched off for every model.
- ModelNotReadyException comes with a 429 but is the model's state, not the key's: transient.
- ResourceNotFoundException is a model id or inference profile this account or region does not
  have; another key (another account) may: MODEL_DENIED. So is a ValidationException about the
  model id itself (an invalid identifier, on-demand throughput not supported): the deployment's
  configuration, never the caller's request.
- ValidationException saying the input is too long or too large is CONTEXT_TOO_LONG; any other
  is the caller's BAD_REQUEST.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router_service._masking import cut_words
from router_service.clock import Clock
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers._classify import (  # _Message: the shared echo rule
    _Message,
    classify_http_error,
    upstream_wait,
)

JsonObject = dict[str, Any]

# Lower-case exception name → (HTTP status it is documented with, Outcome; None: read the words).
_TYPES: dict[str, tuple[int, Outcome | None]] = {
    "throttlingexception": (429, Outcome.RATE_LIMITED),
    "servicequotaexceededexception": (400, Outcome.RATE_LIMITED),
    "accessdeniedexception": (403, None),
    "validationexception": (400, None),
    "resourcenotfoundexception": (404, Outcome.MODEL_DENIED),
    "modelnotreadyexception": (429, Outcome.UPSTREAM_ERROR),
    "modeltimeoutexception": (408, Outcome.UPSTREAM_ERROR),
    "modelerrorexception": (424, Outcome.UPSTREAM_ERROR),
    "modelstreamerrorexception": (424, Outcome.UPSTREAM_ERROR),
    "internalserverexception": (500, Outcome.UPSTREAM_ERROR),
    "internalfailure": (500, Outcome.UPSTREAM_ERROR),
    "serviceunavailableexception": (503, Outcome.UPSTREAM_ERROR),
    "serviceunavailable": (503, Outcome.UPSTREAM_ERROR),
    "unrecognizedclientexception": (403, Outcome.AUTH_INVALID),
    "invalidsignatureexception": (403, Outcome.AUTH_INVALID),
    "signaturedoesnotmatch": (403, Outcome.AUTH_INVALID),
    "incompletesignature": (400, Outcome.AUTH_INVALID),
    "incompletesignatureexception": (400, Outcome.AUTH_INVALID),
    "invalidclienttokenid": (403, Outcome.AUTH_INVALID),
    "expiredtokenexception": (403, Outcome.AUTH_INVALID),
    "missingauthenticationtokenexception": (403, Outcome.AUTH_INVALID),
    "missingauthenticationtoken": (403, Outcome.AUTH_INVALID),
}
_CREDENTIAL_WORDS = re.compile(
    r"api key|bearer|security token|signature|credential|authenticat|access key"
)
_TOO_LONG = re.compile(
    r"too long|too large|too many (?:input )?tokens|context (?:length|window)|exceeds? the max"
)
_MODEL_ID_WORDS = re.compile(
    r"model identifier is invalid|on-demand throughput isn.t supported|model id.* is not valid"
)


def error_type(headers: Mapping[str, str], error: Mapping[str, Any]) -> str:
    """The exception's name: from `x-amzn-ErrorType`, else the body's `__type` or `code`."""
    named = headers.get("x-amzn-errortype") or headers.get("x-amzn-ErrorType") or ""
    if not named:
        for field in ("__type", "code", "type"):
            value = error.get(field)
            if isinstance(value, str) and value and not value.isdigit():
                named = value
                break
    # `ThrottlingException:http://…` (header) or `com.amazon.coral#ThrottlingException` (body).
    return named.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def _outcome(kind: str, documented: Outcome | None, message: _Message) -> Outcome:
    """Words count only where the request did not hold them: a ValidationException quotes a
    value it refuses (a tool name), which a caller could word to switch keys off."""
    if documented is not None:
        return documented
    if kind == "accessdeniedexception":
        credentials = message.said_by_upstream(_CREDENTIAL_WORDS)
        return Outcome.AUTH_INVALID if credentials else Outcome.MODEL_DENIED
    if message.said_by_upstream(_TOO_LONG):
        return Outcome.CONTEXT_TOO_LONG
    if message.said_by_upstream(_MODEL_ID_WORDS):
        return Outcome.MODEL_DENIED
    return Outcome.BAD_REQUEST


def classify(
    status: int,
    error: Mapping[str, Any],
    headers: Mapping[str, str],
    clock: Clock,
    *,
    sent: bytes = b"",
) -> UpstreamFailure:
    """The failure a Bedrock error stands for. `status` is 0 for a stream's exception message
    (its type says which status it stands for). A type Bedrock does not document here is left
    to the shared classification (status, code and words)."""
    name = error_type(headers, error)
    known = _TYPES.get(name.lower())
    upstream_error = {**error, "__type": name} if name else dict(error)
    if known is None:
        return classify_http_error(status, upstream_error, headers, clock, sent=sent)
    documented_status, documented = known
    status = status if status >= 400 else documented_status
    message = str(error.get("message") or error.get("Message") or "")
    outcome = _outcome(name.lower(), documented, _Message(message.lower(), sent))
    retry_after = upstream_wait(outcome, headers, clock)
    detail = (
        f"HTTP {status} {name}: {cut_words(message, 200)}" if message else f"HTTP {status} {name}"
    )
    return UpstreamFailure(
        outcome,
        detail,
        upstream_status=status,
        retry_after_s=retry_after,
        scope=Scope.KEY if outcome is Outcome.AUTH_INVALID else None,
        upstream_error={"message": message or name, **upstream_error},
    )
