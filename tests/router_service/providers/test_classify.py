"""Upstream failures → Outcomes: statuses, wrapped errors, the credential pattern table."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.outcomes import Outcome, Scope
from router_service.providers import classify_http_error, retry_after_seconds

CLOCK = ManualClock(start=1_700_000_000.0)
TOO_LARGE_FOR_OPENAI = {
    "message": "Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit "
    "30000, Requested 36278. The input or output tokens must be reduced in order to run "
    "successfully.",
    "type": "tokens",
    "param": None,
    "code": "rate_limit_exceeded",
}
TOO_LARGE_FOR_GROQ = {
    "message": "Request too large for model `llama-3.3-70b-versatile` in organization `org_x` "
    "service tier `on_demand` on tokens per minute (TPM): Limit 12000, Requested 21357, please "
    "reduce your message size and try again.",
    "type": "tokens",
    "code": "rate_limit_exceeded",
}


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (401, {"message": "whatever"}, Outcome.AUTH_INVALID),
        (403, {"message": "forbidden"}, Outcome.AUTH_INVALID),
        (498, {"message": "invalid token"}, Outcome.AUTH_INVALID),  # Cohere's
        (
            499,
            {"code": 499, "message": "The operation was cancelled.", "status": "CANCELLED"},
            Outcome.UPSTREAM_ERROR,
        ),
        (
            400,
            {"code": "invalid_api_key", "message": "Incorrect API key provided: sk-…"},
            Outcome.AUTH_INVALID,
        ),
        (
            400,
            {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
            },
            Outcome.AUTH_INVALID,
        ),
        (400, {"message": "x", "details": [{"reason": "API_KEY_INVALID"}]}, Outcome.AUTH_INVALID),
        (
            401,
            {"type": "authentication_error", "message": "invalid x-api-key"},
            Outcome.AUTH_INVALID,
        ),
        (400, {"message": "Invalid API Key"}, Outcome.AUTH_INVALID),
        # Anthropic's answer to every request of a key whose organization was disabled: the
        # key's, not the request's (a 400 passed to the caller, the key kept in use).
        (
            400,
            {"type": "invalid_request_error", "message": "This organization has been disabled."},
            Outcome.AUTH_INVALID,
        ),
        (404, {"message": "API key not found"}, Outcome.AUTH_INVALID),
        (
            429,
            {"code": "insufficient_quota", "message": "You exceeded your current quota"},
            Outcome.QUOTA_EXHAUSTED,
        ),
        (
            429,
            {"code": "rate_limit_exceeded", "message": "Rate limit reached"},
            Outcome.RATE_LIMITED,
        ),
        (429, {"message": "Overloaded"}, Outcome.RATE_LIMITED),
        (
            400,
            {"code": "context_length_exceeded", "message": "maximum context length is 8192"},
            Outcome.CONTEXT_TOO_LONG,
        ),
        (
            400,
            {
                "code": 400,
                "message": "The input token count (132478) exceeds the maximum number of tokens "
                "allowed (131072).",
                "status": "INVALID_ARGUMENT",
            },
            Outcome.CONTEXT_TOO_LONG,
        ),
        (
            400,
            {
                "type": "invalid_request_error",
                "message": "input length and `max_tokens` exceed context limit: 178959 + 64000 "
                "> 200000, decrease input length or `max_tokens` and try again",
            },
            Outcome.CONTEXT_TOO_LONG,
        ),
        # A request larger than the key's whole tokens-per-minute budget (OpenAI's 429, Groq's
        # 413, code rate_limit_exceeded): a rate limit, not the model's context window (which
        # `truncation: auto` would cut the conversation for); no key is cooled for it
        # (`test_a_request_too_large_for_the_budget_cools_no_key`).
        (429, TOO_LARGE_FOR_OPENAI, Outcome.RATE_LIMITED),
        (413, TOO_LARGE_FOR_GROQ, Outcome.RATE_LIMITED),
        # Anthropic's 429 for an input past the organization's input tokens per minute.
        (
            429,
            {
                "type": "rate_limit_error",
                "message": "This request would exceed the rate limit for your organization of "
                "20,000 input tokens per minute. Please reduce the prompt length or the maximum "
                "tokens requested, or try again later.",
            },
            Outcome.RATE_LIMITED,
        ),
        # Anthropic's 413: a body past its 32 MB, said by its proxy before any model reads it:
        # not the context window (Anthropic's is "prompt is too long": its 400 above), but
        # this upstream's limit, which the group's next deployment may not have.
        (
            413,
            {"type": "request_too_large", "message": "Request exceeds the maximum allowed size"},
            Outcome.UNSUPPORTED_INPUT,
        ),
        # Gemini's 429 for its input tokens per minute (a RESOURCE_EXHAUSTED without a
        # QuotaFailure): a rate limit too.
        (
            429,
            {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
            },
            Outcome.RATE_LIMITED,
        ),
        (400, {"code": "content_filter", "message": "blocked"}, Outcome.CONTENT_FILTERED),
        # One model the key may not use: that key × model, not the key.
        (
            403,
            {"code": 5016, "message": "User has not agreed to Llama3.2 model terms"},
            Outcome.MODEL_DENIED,
        ),
        (
            403,
            {"code": 5018, "message": "The account is not allowed to access this model"},
            Outcome.MODEL_DENIED,
        ),
        (
            403,
            {
                "type": "permission_error",
                "message": "Your API key does not have permission to use the specified resource.",
            },
            Outcome.MODEL_DENIED,
        ),
        (403, {"message": "You are not allowed to sample from this model"}, Outcome.MODEL_DENIED),
        (400, {"message": "Invalid value for temperature"}, Outcome.BAD_REQUEST),
        (404, {"message": "The model does not exist"}, Outcome.BAD_REQUEST),
        (422, {"message": "unprocessable"}, Outcome.BAD_REQUEST),
        # A proxy's 413 page: the body over its limit, not every upstream's.
        (
            413,
            {"message": "<html><h1>413 Request Entity Too Large</h1></html>"},
            Outcome.UNSUPPORTED_INPUT,
        ),
        (500, {"message": "oops"}, Outcome.UPSTREAM_ERROR),
        (503, {"message": "rate limit of the backend pool"}, Outcome.UPSTREAM_ERROR),
        (529, {"type": "overloaded_error", "message": "Overloaded"}, Outcome.UPSTREAM_ERROR),
        # Gemini refuses every request from where the router runs: no caller's fault, and the
        # group's next deployment (another provider) may serve it.
        (
            400,
            {
                "code": 400,
                "message": "User location is not supported for the API use.",
                "status": "FAILED_PRECONDITION",
            },
            Outcome.UPSTREAM_ERROR,
        ),
        # Wrapped: HTTP 200 whose body is an error; the inner status decides.
        (200, {"code": 429, "message": "Too many requests"}, Outcome.RATE_LIMITED),
        (200, {"code": 500, "message": "internal"}, Outcome.UPSTREAM_ERROR),
        (200, {"code": 401, "message": "no"}, Outcome.AUTH_INVALID),
        (200, {"message": "Incorrect API key provided"}, Outcome.AUTH_INVALID),
        # Cohere: 401 {"message": "invalid api token"}, also when it arrives wrapped.
        (401, {"id": "x", "message": "invalid api token"}, Outcome.AUTH_INVALID),
        (200, {"message": "invalid api token"}, Outcome.AUTH_INVALID),
        (402, {"message": "Please add or update your payment method."}, Outcome.QUOTA_EXHAUSTED),
        # Cloudflare's envelope errors: v4 code 10000, its rate limit 971, Workers AI 3036 (free
        # allocation spent).
        (200, {"code": 10000, "message": "Authentication error"}, Outcome.AUTH_INVALID),
        (
            429,
            {"code": 3036, "message": "You have used up your daily free allocation of 10,000"},
            Outcome.QUOTA_EXHAUSTED,
        ),
        (429, {"code": 971, "message": "consider throttling your request"}, Outcome.RATE_LIMITED),
        # Anthropic, as stream `error` events (no status of their own) and as HTTP errors.
        (200, {"type": "overloaded_error", "message": "Overloaded"}, Outcome.UPSTREAM_ERROR),
        (200, {"type": "api_error", "message": "Internal server error"}, Outcome.UPSTREAM_ERROR),
        (200, {"type": "rate_limit_error", "message": "slow down"}, Outcome.RATE_LIMITED),
        (200, {"type": "authentication_error", "message": "invalid"}, Outcome.AUTH_INVALID),
        (400, {"type": "billing_error", "message": "credit too low"}, Outcome.QUOTA_EXHAUSTED),
        (
            400,
            {"type": "invalid_request_error", "message": "Output blocked by content filtering"},
            Outcome.CONTENT_FILTERED,
        ),
        (
            400,
            {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens"},
            Outcome.CONTEXT_TOO_LONG,
        ),
        # Gemini: google.rpc statuses, with or without a numeric code.
        (200, {"message": "Quota", "status": "RESOURCE_EXHAUSTED"}, Outcome.RATE_LIMITED),
        (
            429,
            {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"},
            Outcome.RATE_LIMITED,
        ),
        (
            503,
            {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"},
            Outcome.UPSTREAM_ERROR,
        ),
        (200, {"code": 500, "message": "Internal", "status": "INTERNAL"}, Outcome.UPSTREAM_ERROR),
        (
            400,
            {
                "code": 400,
                "message": "Candidate blocked due to SAFETY",
                "status": "INVALID_ARGUMENT",
            },
            Outcome.CONTENT_FILTERED,
        ),
        (
            400,
            {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"},
            Outcome.BAD_REQUEST,
        ),
    ],
)
def test_classification(status: int, error: dict[str, object], expected: Outcome) -> None:
    failure = classify_http_error(status, error, {}, CLOCK)
    assert failure.outcome is expected
    assert failure.upstream_error == error


def test_auth_failures_are_key_wide() -> None:
    failure = classify_http_error(401, {"message": "bad key"}, {}, CLOCK)
    assert failure.scope is Scope.KEY


# OpenAI's headers on a 429 (the request window refills long after the tokens one).
OPENAI_RESETS = {
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-reset-requests": "6m0s",
    "x-ratelimit-limit-tokens": "30000",
    "x-ratelimit-remaining-tokens": "27000",
    "x-ratelimit-reset-tokens": "20ms",
}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),
        # OpenAI's two resets: the spent limit's (remaining 0); when unclear, the longer.
        ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "20ms"}, 360.0),
        ({**OPENAI_RESETS, "x-ratelimit-remaining-tokens": "0"}, 0.02),
        ({**OPENAI_RESETS, "x-ratelimit-remaining-requests": "0"}, 360.0),
        (
            {
                **OPENAI_RESETS,
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-remaining-tokens": "0",
            },
            360.0,
        ),
        ({**OPENAI_RESETS, "x-ratelimit-remaining-tokens": "12"}, 360.0),
        ({"x-ratelimit-reset-tokens": "1s", "x-ratelimit-remaining-requests": "0"}, 1.0),
        ({**OPENAI_RESETS, "x-ratelimit-remaining-tokens": "0", "retry-after": "3"}, 3.0),
        ({"x-ratelimit-reset-tokens": "1.5s"}, 1.5),
        ({}, None),
        ({"Retry-After": "soon"}, None),
        # float() reads these, but none is a wait: no hint, so the backoff decides.
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "-5"}, None),
        ({"retry-after-ms": "Infinity"}, None),
        ({"retry-after-ms": "inf", "Retry-After": "3"}, 3.0),
        ({"x-ratelimit-reset-tokens": "9" * 400 + "s"}, None),
        ({"Retry-After": "Tue, 99 Nov 2023 99:13:30 GMT"}, None),  # not a date
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    # CLOCK's epoch second 1_700_000_000 is 2023-11-14 22:13:20 GMT.
    assert retry_after_seconds(headers, CLOCK) == (
        pytest.approx(expected) if expected is not None else None
    )


@pytest.mark.parametrize(
    ("status", "error", "headers", "wait"),
    [
        (429, {"message": "slow down"}, {"retry-after": "4"}, 4.0),
        (429, {"message": "slow down"}, {"x-ratelimit-reset-tokens": "2s"}, 2.0),
        # A server's failure (a 503, Anthropic's 529) cools the deployment for its Retry-After.
        (503, {"message": "down"}, {"retry-after": "4"}, 4.0),
        (529, {"type": "overloaded_error", "message": "Overloaded"}, {"retry-after": "30"}, 30.0),
        (500, {"message": "oops"}, {"retry-after-ms": "2500"}, 2.5),
        # OpenAI sends its resets on every answer: they are the key's windows, not the server's.
        (503, {"message": "down"}, OPENAI_RESETS, None),
        # The caller's and the key's failures carry no wait.
        (400, {"message": "bad"}, {"retry-after": "4"}, None),
        (401, {"message": "bad key"}, {"retry-after": "4"}, None),
        (429, {"code": "insufficient_quota", "message": "x"}, {"retry-after": "4"}, None),
    ],
)
def test_which_failures_carry_an_upstreams_wait(
    status: int, error: dict[str, object], headers: dict[str, str], wait: float | None
) -> None:
    assert classify_http_error(status, error, headers, CLOCK).retry_after_s == wait


def _gemini_429(*details: Any) -> dict[str, Any]:
    """Gemini's 429 as it is sent (gemini-cli#8437): billing words, the limit in its details."""
    return {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": list(details),
    }


_PER_MINUTE = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
}
_PER_DAY = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
}
_RETRY_26S = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}


@pytest.mark.parametrize(
    ("error", "headers", "retry_after"),
    [
        (_gemini_429(_PER_MINUTE, _RETRY_26S), {}, 26.0),
        (_gemini_429(_PER_DAY), {}, None),  # no RetryInfo: the pool's own backoff
        (_gemini_429({**_RETRY_26S, "retryDelay": "0.5s"}), {}, 0.5),
        (_gemini_429(_PER_MINUTE, _RETRY_26S), {"retry-after": "3"}, 3.0),
    ],
)
def test_a_gemini_limit_in_billing_words_is_a_rate_limit_of_the_key_and_model(
    error: dict[str, object], headers: dict[str, str], retry_after: float | None
) -> None:
    failure = classify_http_error(429, error, headers, CLOCK)
    assert failure.outcome is Outcome.RATE_LIMITED
    assert failure.retry_after_s == retry_after


def test_the_same_words_without_a_named_limit_are_exhausted_quota() -> None:
    # OpenAI's insufficient_quota says the same; so would a Gemini account without credit.
    openai = {"code": "insufficient_quota", "message": "You exceeded your current quota"}
    gemini = _gemini_429()
    for error in (openai, gemini):
        assert classify_http_error(429, error, {}, CLOCK).outcome is Outcome.QUOTA_EXHAUSTED


@pytest.mark.parametrize(
    ("status", "error"), [(429, TOO_LARGE_FOR_OPENAI), (413, TOO_LARGE_FOR_GROQ)]
)
def test_a_request_too_large_for_the_budget_cools_no_key(
    status: int, error: dict[str, Any]
) -> None:
    """It belongs to no key (Scope.NONE: nothing is cooled), and asks for no wait: however long
    the key rests, this request does not fit its budget."""
    headers = {"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "30000"}
    failure = classify_http_error(status, error, headers, CLOCK)
    assert (failure.outcome, failure.scope, failure.retry_after_s) == (
        Outcome.RATE_LIMITED,
        Scope.NONE,
        None,
    )
