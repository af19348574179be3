"""Upstream failures → Outcomes: status, error code and message text, for every adapter.

One pattern table recognises credential, quota, context-length and content-filter failures in the
words providers actually use, whether they arrive as a real HTTP error or wrapped in a 200.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
from collections.abc import Mapping
from typing import Any

from router_service._masking import cut_words
from router_service.clock import Clock
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope

_SERVER_TYPES = r"overloaded|server_error|api_error"

# (outcome, precise words, loose words) over "code type status" and the message, in lower case.
# First match wins. Precise words are a verdict in a provider's own phrasing and count at any
# status; loose words only name a topic, which a server's own failure may mention ("internal
# error computing safety scores", "too many tokens in flight"): they count in the structured
# fields, but in a message only where no 5xx says the server failed (`_outcome_for`).
_TEXT_PATTERNS: tuple[tuple[Outcome, re.Pattern[str], re.Pattern[str] | None], ...] = (
    # One model the key may not use (the key's other models are fine): Cloudflare 5016 "User
    # has not agreed to Llama3.2 model terms", 5018/3041 "not allowed to access this model";
    # OpenAI "You are not allowed to sample from this model"; Anthropic's permission_error.
    (
        Outcome.MODEL_DENIED,
        re.compile(
            r"has not agreed to|not allowed to access this model|not allowed to sample from"
            r"|permission_error|does not have access to (?:the )?model"
        ),
        None,
    ),
    (
        Outcome.AUTH_INVALID,
        re.compile(
            r"invalid_api_key|incorrect api key|api key not valid|api_key_invalid"
            r"|authentication_error|invalid api[ -]?key|api key not found|invalid x-api-key"
            r"|invalid authentication|unauthenticated|permission_denied"
            # Cohere: 401 "invalid api token".
            r"|invalid api token"
            # Anthropic: a 400 invalid_request_error for every request of a disabled
            # organization's key.
            r"|organization has been disabled"
        ),
        # Cloudflare: code 10000 "Authentication error" (a 401, or wrapped in a 200).
        re.compile(r"authentication error"),
    ),
    (
        Outcome.QUOTA_EXHAUSTED,
        re.compile(
            r"insufficient_quota|exceeded your current quota|credit balance"
            # Cloudflare Workers AI 3036: "used up your daily free allocation of … neurons".
            r"|free allocation"
        ),
        # Anthropic's billing_error (a type: always counts).
        re.compile(r"billing"),
    ),
    (
        Outcome.CONTEXT_TOO_LONG,
        re.compile(
            r"context_length_exceeded|maximum context length|prompt is too long"
            # Gemini: "The input token count (132478) exceeds the maximum number of tokens
            # allowed (131072)"; Anthropic: "input length and `max_tokens` exceed context limit".
            r"|exceeds the maximum number of tokens|exceed context limit"
            # llama.cpp's server: type exceed_context_size_error, "the request exceeds the
            # available context size" (a 500 in its first builds with it, a 400 since); xAI:
            # "This model's maximum prompt length is 131072 but the request contains …".
            r"|exceed_context_size|available context size|maximum prompt length"
            # vLLM: "The decoder prompt (length 9000) is longer than the maximum model length of
            # 8192"; Hugging Face TGI's 422: "`inputs` tokens + `max_new_tokens` must be <= 8192",
            # "`inputs` must have less than 1024 tokens".
            r"|longer than the maximum model length|`inputs` tokens \+ `max_new_tokens` must be"
            r"|`inputs` must have less than"
        ),
        # Cohere's 400 "too many tokens: …"; Bedrock's "Input is too long for requested model".
        re.compile(r"context window|too many tokens|input is too long"),
    ),
    (
        Outcome.CONTENT_FILTERED,
        re.compile(
            r"content_filter|content_policy|content management policy"
            # Anthropic: "Output blocked by content filtering policy".
            r"|content filtering"
        ),
        # Gemini's 400 "Candidate blocked due to SAFETY".
        re.compile(r"safety"),
    ),
    # Gemini's google.rpc status RESOURCE_EXHAUSTED is its 429.
    (
        Outcome.RATE_LIMITED,
        re.compile(r"rate_limit|rate limit|too many requests|resource_exhausted"),
        None,
    ),
    # Anthropic: overloaded_error (529) and api_error (500), also as stream `error` events.
    # Gemini: a 400 FAILED_PRECONDITION "User location is not supported for the API use." for
    # every request from where the router runs: the deployment's, not the caller's.
    (
        Outcome.UPSTREAM_ERROR,
        re.compile(_SERVER_TYPES + r"|internal error|location is not supported"),
        None,
    ),
)
# Each outcome's precise and loose words together: what counts in the structured fields always,
# and in the message unless the server said it failed.
_EVERY_WORD = tuple(
    precise if loose is None else re.compile(f"{precise.pattern}|{loose.pattern}")
    for _, precise, loose in _TEXT_PATTERNS
)
# OpenAI's 429 and Groq's 413 (code rate_limit_exceeded, type tokens) for a request larger than
# the key's (its organization's) whole tokens-per-minute budget: "Request too large for gpt-4o in
# organization … on tokens per min (TPM): Limit 30000, Requested 36278". The model's context
# window would take it (OpenAI's own `truncation: auto` leaves nothing out for it): a rate limit,
# which another key (another organization's budget) or deployment may serve. But one that
# belongs to no key (Scope.NONE): resting does not make it fit, and cooling the key for it would
# take it from every caller's smaller requests; nor is there a wait to tell the caller.
# Azure OpenAI says it as its ordinary token limit ("Requests to the ChatCompletions_Create
# Operation … have exceeded token rate limit of your current … pricing tier. Please retry after
# 86400 seconds."), with a day for the wait: no minute of its deployment's tpm would take the
# request. Its ordinary 429 waits seconds ("retry after 6 seconds"): the key's, cooled.
_TOO_LARGE_FOR_BUDGET = re.compile(
    r"request too large for .* on tokens per min"
    r"|exceeded token rate limit .*(?:retry after|try again in) 86400 seconds"
)
# Error types that say the server failed: with no HTTP status (a stream's `error` event), they
# stand for a 5xx.
_SERVER_FIELDS = re.compile(_SERVER_TYPES)


def classify_http_error(
    status: int,
    error: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    clock: Clock,
    *,
    sent: bytes = b"",
) -> UpstreamFailure:
    """Classify an upstream error response (or a wrapped error object) into an UpstreamFailure.

    `status` is the HTTP status, or the status carried inside a wrapped error (0 if none).
    `sent` is the request body the upstream answered: words of the error's message that are
    also in it may be the caller's own, echoed (see `_Message`), and decide nothing."""
    inner_status = _inner_status(error)
    effective = status if status >= 400 else inner_status
    fields, message_text = _error_text(error)
    is_limit, delay = _google_quota_limit(error)
    message_of = _Message(message_text, sent)
    too_large = message_of.said_by_upstream(_TOO_LARGE_FOR_BUDGET)
    outcome = (
        Outcome.RATE_LIMITED
        if is_limit or too_large
        else _outcome_for(effective, fields, message_of)
    )
    retry_after = None if too_large else upstream_wait(outcome, headers, clock)
    retry_after = delay if retry_after is None else retry_after
    message = str(error.get("message", "")) if error else ""
    detail = (
        f"HTTP {effective or status}: {cut_words(message, 200)}" if message else f"HTTP {effective}"
    )
    scope = Scope.KEY if outcome is Outcome.AUTH_INVALID else None
    return UpstreamFailure(
        outcome,
        detail,
        upstream_status=effective or status,
        retry_after_s=retry_after,
        scope=Scope.NONE if too_large else scope,
        upstream_error=dict(error) if error is not None else None,
    )


class _Message:
    """An error's message (lower case) and the request body it answers.

    Upstreams quote the request in their 400s: OpenAI "Unrecognized request argument supplied:
    <name>", Anthropic "<name>: Extra inputs are not permitted", Gemini `Unknown name "<name>"`,
    and any "Invalid value: '<value>'". A caller who sends a field named `invalid_api_key` (unknown
    fields are passed through) would otherwise have every key of the provider disabled for a
    day, one after another as the request moves on, for every caller; `billing` would switch keys
    off as out of quota, `internal error` cool the deployment. So a pattern counts in the message
    only where its words are not in what was sent. Structured fields (code, type, status, detail
    reasons) are the provider's own and always count."""

    __slots__ = ("_sent", "_sent_lower", "text")

    def __init__(self, text: str, sent: bytes) -> None:
        self.text = text
        self._sent = sent
        self._sent_lower: bytes | None = None

    def said_by_upstream(self, pattern: re.Pattern[str]) -> bool:
        for match in pattern.finditer(self.text):
            if not self._sent:
                return True
            if self._sent_lower is None:  # only for an error whose message matched: rare
                self._sent_lower = self._sent.lower()
            if match.group().encode() not in self._sent_lower:
                return True
        return False


def _outcome_for(status: int, fields: str, message: _Message) -> Outcome:
    # A server that says it failed (a 5xx, or a server error type without a status) is not
    # overruled by a topic its message mentions: only precise words count in that message.
    server_failed = status >= 500 or (status < 400 and _SERVER_FIELDS.search(fields) is not None)
    for (outcome, precise, _), every in zip(_TEXT_PATTERNS, _EVERY_WORD, strict=True):
        if every.search(fields) or message.said_by_upstream(precise if server_failed else every):
            # A 5xx that mentions "rate limit" is still the server's failure, and a 429 whose
            # text says "overloaded" is still throttling: the status decides between those two.
            if outcome is Outcome.RATE_LIMITED and status >= 500:
                return Outcome.UPSTREAM_ERROR
            if outcome is Outcome.UPSTREAM_ERROR and status == 429:
                return Outcome.RATE_LIMITED
            return outcome
    # Cohere's 498 is "invalid token": its 401 by another number.
    if status in (401, 403, 498):
        return Outcome.AUTH_INVALID
    # 499: the upstream says the request was cancelled (Cohere, Gemini's CANCELLED), which we
    # did not do: its failure, which another deployment may make good.
    if status == 499:
        return Outcome.UPSTREAM_ERROR
    if status == 402:  # Payment Required: the account's credit, not this request
        return Outcome.QUOTA_EXHAUSTED
    if status == 429:
        return Outcome.RATE_LIMITED
    # 413: the body is over this upstream's own limit (Anthropic's `request_too_large`, 32 MB; a
    # proxy's page): another deployment of the group may take it; no key, nor the deployment,
    # is to blame (Groq's 413 for a key's tpm budget is a rate limit, read above).
    if status == 413:
        return Outcome.UNSUPPORTED_INPUT
    if status >= 500 or status == 408:
        return Outcome.UPSTREAM_ERROR
    if 400 <= status < 500:
        return Outcome.BAD_REQUEST
    return Outcome.UPSTREAM_ERROR


def _google_quota_limit(error: Mapping[str, Any] | None) -> tuple[bool, float | None]:
    """Gemini words every 429 like a billing failure ("You exceeded your current quota, please
    check your plan and billing details") but names the limit it hit in a google.rpc.QuotaFailure
    (`GenerateRequestsPerMinutePerProjectPerModel`, `...PerDay...`) with a RetryInfo: a limit of
    this key and model that the wait lifts, not an account to switch off. Returns (whether the
    error is such a limit, RetryInfo's `retryDelay` in seconds if it has one)."""
    if not error or str(error.get("status", "")) != "RESOURCE_EXHAUSTED":
        return False, None
    details = error.get("details")
    kinds = {
        str(d.get("@type", "")).rsplit(".", 1)[-1]: d
        for d in (details if isinstance(details, list) else ())
        if isinstance(d, dict)
    }
    if "QuotaFailure" not in kinds and "RetryInfo" not in kinds:
        return False, None
    delay = kinds.get("RetryInfo", {}).get("retryDelay")
    return True, _parse_duration(delay) if isinstance(delay, str) else None


def _inner_status(error: Mapping[str, Any] | None) -> int:
    if not error:
        return 0
    for field in ("code", "status"):
        value = error.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
        if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
            return int(value)
    return 0


def _error_text(error: Mapping[str, Any] | None) -> tuple[str, str]:
    """(the provider's structured fields, its message), in lower case."""
    if not error:
        return "", ""
    parts = [str(error.get(field, "")) for field in ("code", "type", "status")]
    for detail in error.get("details", ()) if isinstance(error.get("details"), list) else ():
        if isinstance(detail, dict):
            parts.append(str(detail.get("reason", "")))
    return " ".join(parts).lower(), str(error.get("message", "")).lower()


# asctime's "Sun Nov  6 08:49:37 1994": the one HTTP date form without a comma.
_ASCTIME = re.compile(r"[a-z]{3} [a-z]{3} +\d{1,2} \d\d:\d\d:\d\d \d{4}", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def upstream_wait(outcome: Outcome, headers: Mapping[str, str], clock: Clock) -> float | None:
    """The wait an upstream's answer asks for, as its outcome reads it: a rate limit's is
    `retry_after_seconds`; a server failure's (a 503, Anthropic's 529) only its `Retry-After` /
    `retry-after-ms`, which the deployment's cooldown honours. OpenAI sends its
    `x-ratelimit-reset-*` on every answer: when the key's windows refill says nothing of when a
    failing server is back. Any other outcome has none."""
    if outcome is Outcome.RATE_LIMITED:
        return retry_after_seconds(headers, clock)
    if outcome is Outcome.UPSTREAM_ERROR:
        return _retry_after({k.lower(): v for k, v in headers.items()}, clock)
    return None


def retry_after_seconds(headers: Mapping[str, str], clock: Clock) -> float | None:
    """The wait an upstream asked for: `Retry-After` (seconds or HTTP date), `retry-after-ms`, or
    OpenAI's `x-ratelimit-reset-requests` / `-tokens` durations ("1s", "6m0s", "20ms").

    Only a finite, non-negative number is a wait: `inf`, `nan` or `-5` (which `float` reads)
    are no hint at all. How long a hint may be is the engine's to cap
    (`cooldowns.retry_after_max_s`)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    asked = _retry_after(lowered, clock)
    return asked if asked is not None else _reset_wait(lowered)


def _retry_after(lowered: Mapping[str, str], clock: Clock) -> float | None:
    """`retry-after-ms`, else `Retry-After` (seconds or an HTTP date), of lower-cased headers."""
    if "retry-after-ms" in lowered:
        millis = _number(lowered["retry-after-ms"])
        if millis is not None:
            return millis / 1000.0
    value = lowered.get("retry-after")
    if value:
        seconds = _number(value)
        if seconds is not None:
            return seconds
        parsed = _http_date(value)
        if parsed is not None:
            return max(0.0, parsed - clock.now())
    return None


def _reset_wait(lowered: Mapping[str, str]) -> float | None:
    """OpenAI's reset of the limit a 429 hit: each of requests and tokens has its own, and a
    minute's request window refills long after its tokens (`6m0s` against `20ms`). The one whose
    `x-ratelimit-remaining-*` is 0 is the limit hit; when neither or both say so, the longer."""
    resets: dict[str, float] = {}
    for limit in ("requests", "tokens"):
        reset = lowered.get(f"x-ratelimit-reset-{limit}")
        parsed = _parse_duration(reset) if reset is not None else None
        if parsed is not None:
            resets[limit] = parsed
    spent = [
        wait
        for limit, wait in resets.items()
        if _number(lowered.get(f"x-ratelimit-remaining-{limit}", "")) == 0
    ]
    waits = spent or list(resets.values())
    return max(waits) if waits else None


def _number(text: str) -> float | None:
    """A finite, non-negative decimal; None for anything else (a date, `inf`, `nan`, `-1`)."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _http_date(text: str) -> float | None:
    """An HTTP date (IMF-fixdate, RFC 850 or asctime, RFC 9110 §5.6.7) as a Unix time; None when
    it is not one. Every form is GMT: one that names no zone (asctime's, a `-0000`) is not the
    host's local time, which five hours west of GMT made a 10 s wait five hours."""
    if "," not in text and _ASCTIME.fullmatch(text.strip()) is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed.timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


def _parse_duration(text: str) -> float | None:
    matches = _DURATION.findall(text.strip())
    if not matches:
        return None
    total = sum(float(number) * _UNITS[unit] for number, unit in matches)
    return total if math.isfinite(total) else None  # 400 digits are `inf` to float()
