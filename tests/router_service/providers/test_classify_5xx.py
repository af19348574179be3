"""A server that says it failed (a 5xx, or a server error type without a status) stays the
server's failure when its message merely mentions a caller's topic (safety, a context window,
billing): the next deployment takes the request. Precise words and structured fields still
count, as llama.cpp's context error said with a 500 needs."""

from __future__ import annotations

import pytest

from router_service.clock import ManualClock
from router_service.outcomes import Outcome
from router_service.providers import classify_http_error
from tests.router_service.providers.test_stream_wire_shapes import LLAMA_CPP_TOO_LONG

CLOCK = ManualClock(start=1_700_000_000.0)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, {"type": "api_error", "message": "Internal error computing safety scores"}),
        (
            503,
            {
                "message": "server error: too many tokens in flight, retry shortly",
                "type": "server_error",
                "param": None,
                "code": None,
            },
        ),
        (500, {"message": "failed to allocate the KV cache for the context window"}),
        (502, {"message": "Bad gateway: input is too long to buffer at the proxy"}),
        (503, {"message": "The billing service is unavailable."}),
        (500, {"message": "upstream authentication error between our services"}),
        # Wrapped in a 200: the inner status decides.
        (200, {"code": 500, "message": "Internal safety classifier crashed"}),
        # A stream's error event (no status) whose type says the server failed.
        (200, {"type": "server_error", "message": "Too many tokens queued on this replica"}),
        (0, {"type": "overloaded_error", "message": "Overloaded: safety checks backed up"}),
        # Real bodies, for the record: Gemini's 500 (gemini-cli#5125), Anthropic's 500
        # (claude-code#8104), OpenAI's overloaded 503, Perplexity's 500 for a large prompt
        # (api-discussion#223).
        (
            500,
            {
                "code": 500,
                "message": "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
                "status": "INTERNAL",
            },
        ),
        (500, {"type": "api_error", "message": "Overloaded"}),
        (
            503,
            {
                "message": "That model is currently overloaded with other requests. You can "
                "retry your request, or contact us through our help center at help.openai.com "
                "if the error persists.",
                "type": "server_error",
                "param": None,
                "code": None,
            },
        ),
        (
            500,
            {
                "message": "An internal server error has occurred.",
                "type": "internal_server_error",
                "code": 500,
            },
        ),
    ],
)
def test_a_server_failure_that_mentions_a_callers_topic_is_the_servers(
    status: int, error: dict[str, object]
) -> None:
    assert classify_http_error(status, error, {}, CLOCK).outcome is Outcome.UPSTREAM_ERROR


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        # llama.cpp's first builds said their context error with a 500: its type and words.
        (500, LLAMA_CPP_TOO_LONG, Outcome.CONTEXT_TOO_LONG),
        (
            500,
            {"message": "the request exceeds the available context size, try increasing it"},
            Outcome.CONTEXT_TOO_LONG,
        ),
        (500, {"message": "This model's maximum context length is 8192"}, Outcome.CONTEXT_TOO_LONG),
        (503, {"code": "content_filter", "message": "filtered"}, Outcome.CONTENT_FILTERED),
        (500, {"message": "Incorrect API key provided: sk-…"}, Outcome.AUTH_INVALID),
        (500, {"type": "billing_error", "message": "credit too low"}, Outcome.QUOTA_EXHAUSTED),
        # Below 500 the loose words count as before.
        (400, {"message": "too many tokens: size limit exceeded"}, Outcome.CONTEXT_TOO_LONG),
        (400, {"message": "Input is too long for requested model."}, Outcome.CONTEXT_TOO_LONG),
        (400, {"message": "Candidate blocked due to SAFETY"}, Outcome.CONTENT_FILTERED),
        (200, {"message": "Response blocked for safety"}, Outcome.CONTENT_FILTERED),
        (401, {"message": "Authentication error"}, Outcome.AUTH_INVALID),
    ],
)
def test_precise_words_and_structured_fields_still_count_on_a_5xx(
    status: int, error: dict[str, object], expected: Outcome
) -> None:
    assert classify_http_error(status, error, {}, CLOCK).outcome is expected
