"""The gRPC error boundary: every error leaving a handler becomes a status with details here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any, TypeVar

import grpc

from clients import ErrorDetails, to_grpc_status
from clients import InvalidRequestError as CodecInvalidRequestError
from clients.switchboard.v1.routing_pb2 import RateLimitStatus
from router_service.auth import RateStatus, current_standing
from router_service.errors import (
    AllCandidatesFailedError,
    ClientRateLimitedError,
    GuardrailBlockedError,
    InvalidRequestError,
    NoCapacityError,
    SwitchboardError,
    UpstreamFailure,
)
from router_service.outcomes import Outcome, Scope
from router_service.server._field_paths import proto_field_path

log = logging.getLogger("switchboard.router")

# Failures the caller can act on come back as the upstream said them (status and error object);
# UNSUPPORTED_INPUT (no deployment could express the request) as the adapter said it, a 400.
_PASSED_THROUGH = {
    Outcome.BAD_REQUEST,
    Outcome.CONTEXT_TOO_LONG,
    Outcome.CONTENT_FILTERED,
    Outcome.UNSUPPORTED_INPUT,
}
_UPSTREAM_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
}
# The codes OpenAI gives these failures, for providers whose errors say them otherwise.
_OPENAI_CODE = {
    Outcome.CONTEXT_TOO_LONG: "context_length_exceeded",
    Outcome.CONTENT_FILTERED: "content_filter",
}
# The code of a request larger than each key's whole tokens-per-minute budget (OpenAI's 429
# "Request too large … on tokens per min": a rate limit of no key's, Scope.NONE): no wait makes
# it fit, and the edge says so (`x-should-retry: false`).
OVER_TPM_BUDGET = "request_too_large_for_tpm"
_OPENAI_TYPE = {
    Outcome.RATE_LIMITED: "rate_limit_error",
    Outcome.QUOTA_EXHAUSTED: "insufficient_quota",
    Outcome.AUTH_INVALID: "upstream_auth_error",
}


def error_details(exc: BaseException) -> ErrorDetails:
    """The wire form of any exception a handler lets escape. Unknown ones say nothing inside.
    A call that fails after it was counted against its caller's rpm or tpm says where the
    caller stands, as its answer would have (the edge's `x-ratelimit-*` headers). BadRequest
    violations name their field in the served request's protobuf terms (`_field_paths.py`)."""
    details = _details_of(exc)
    if details.field_violations:  # OpenAI's names, as the request's protobuf has them
        paths = ((proto_field_path(f), d) for f, d in details.field_violations)
        violations = tuple((path, d) for path, d in paths if path is not None)
        details = replace(details, field_violations=violations)
    standing = current_standing()
    if standing is not None and details.rate_limit is None:
        return replace(details, rate_limit=rate_limit_message(standing))
    return details


def _details_of(exc: BaseException) -> ErrorDetails:
    if isinstance(exc, AllCandidatesFailedError):
        return _failed_details(exc.last, exc.provider, exc.held_back_s)
    if isinstance(exc, CodecInvalidRequestError):
        # The codec could not turn the caller's protobuf into an upstream body (an unknown enum
        # value, a `*_json` field that is not JSON): the caller's fault, named by its path.
        return exc.to_details()
    if isinstance(exc, SwitchboardError):
        return ErrorDetails(
            code=exc.grpc_code,
            message=exc.message,
            reason=exc.reason,
            openai_type=exc.openai_type,
            openai_code=exc.code,
            openai_param=exc.param,
            retry_after_s=exc.retry_after_s
            if isinstance(exc, NoCapacityError | ClientRateLimitedError)
            else None,
            field_violations=((exc.param, exc.message),)
            if isinstance(exc, InvalidRequestError) and exc.param
            else (),
            rate_limit=rate_limit_message(exc.rate_limit)
            if isinstance(exc, ClientRateLimitedError) and exc.rate_limit is not None
            else None,
            guardrail=exc.guardrail if isinstance(exc, GuardrailBlockedError) else None,
        )
    log.exception("internal error in a RouterService handler", exc_info=exc)
    return ErrorDetails(
        code=grpc.StatusCode.INTERNAL,
        message="Internal router error.",
        reason="INTERNAL",
        openai_type="server_error",
    )


def rate_limit_message(status: RateStatus) -> RateLimitStatus:
    """A caller's standing as the wire has it (RouteInfo.rate_limit; a refusal's ErrorInfo
    metadata, by `clients.to_grpc_status`): a limit it does not have stays unset."""
    return RateLimitStatus(
        limit_requests=status.limit_requests,
        remaining_requests=status.remaining_requests,
        reset_requests_s=status.reset_requests_s,
        limit_tokens=status.limit_tokens,
        remaining_tokens=status.remaining_tokens,
        reset_tokens_s=status.reset_tokens_s,
    )


def _failed_details(
    last: UpstreamFailure, provider: str, held_back_s: float | None = None
) -> ErrorDetails:
    outcome = last.outcome
    if outcome in _PASSED_THROUGH and last.upstream_error is not None:
        # The caller's to change, whatever status it came with: one said with a 5xx (llama.cpp's
        # context error, a 500 in its first builds) is a 400, not a failure to retry.
        status = last.upstream_status if last.upstream_status < 500 else 400
        return ErrorDetails(
            code=_UPSTREAM_TO_GRPC.get(status, grpc.StatusCode.INVALID_ARGUMENT),
            message=str(last.upstream_error.get("message") or last.message),
            reason=outcome.name,
            provider=provider,
            upstream_status=status or None,
            upstream_error=_openai_shaped(last.upstream_error, outcome, upstream_status=status),
        )
    throttled = outcome in (Outcome.RATE_LIMITED, Outcome.QUOTA_EXHAUSTED)
    waits = [s for s in (last.retry_after_s, held_back_s) if s is not None]
    over_budget = outcome is Outcome.RATE_LIMITED and last.scope is Scope.NONE
    return ErrorDetails(
        code=grpc.StatusCode.RESOURCE_EXHAUSTED if throttled else grpc.StatusCode.UNAVAILABLE,
        message=f"No upstream could serve the request; last: {outcome.name} ({last.message})",
        reason=outcome.name,
        openai_type=_OPENAI_TYPE.get(outcome, "upstream_error"),
        openai_code=OVER_TPM_BUDGET if over_budget else outcome.name.lower(),
        provider=provider,
        upstream_status=last.upstream_status or None,
        retry_after_s=min(waits) if throttled and waits else None,
    )


def _openai_shaped(
    error: dict[str, Any], outcome: Outcome, *, upstream_status: int
) -> dict[str, Any]:
    """A passed-through upstream error as OpenAI's error object, so that callers' code that reads
    `type` and `code` works whichever deployment answered. OpenAI-shaped errors (OpenAI's own,
    Anthropic's `type` + `message`, Azure's with `type: null` and its `innererror` beside) keep
    their words; others (Gemini's integer `code` and `status`, Cohere's `id`) are restated, the
    original kept under `provider_error`. A body over the upstream's limit (Anthropic's 413
    `request_too_large`, 32 MB; a proxy's HTML 413) is said as the edge says its own 413."""
    code = error.get("code")
    kind = error.get("type")
    if (
        (isinstance(kind, str) or ("type" in error and kind is None))
        and isinstance(error.get("message"), str)
        and (code is None or isinstance(code, str))
    ):
        out = dict(error)
        out["type"] = kind or "invalid_request_error"
    else:
        status = error.get("status")
        code = status.lower() if isinstance(status, str) else None
        out = {
            "message": str(error.get("message") or outcome.name),
            "type": "invalid_request_error",
            "provider_error": error,
        }
    out.setdefault("param", None)
    out["code"] = code if isinstance(code, str) and code else _OPENAI_CODE.get(outcome)
    if upstream_status == 413 and outcome in (Outcome.BAD_REQUEST, Outcome.UNSUPPORTED_INPUT):
        out["type"] = "invalid_request_error"
        out["code"] = (
            "request_too_large" if out["code"] in (None, "invalid_argument") else out["code"]
        )
    if outcome in _OPENAI_CODE and out["code"] in (None, "invalid_argument"):
        out["code"] = _OPENAI_CODE[outcome]
    return out


T = TypeVar("T")


async def answered(context: grpc.aio.ServicerContext, call: Awaitable[T]) -> T:
    """`call`'s answer; an error it raises ends the RPC with its rich status instead (the
    boundary every plain handler shares: `abort_with_status` raises, so nothing follows)."""
    try:
        return await call
    except Exception as exc:
        await context.abort_with_status(to_grpc_status(error_details(exc)))
        raise
