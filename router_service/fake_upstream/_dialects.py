"""How each provider says what the Scenario machinery decides: whose header carries the key, what
an error body, an invalid-key reply and a wrapped error (in a body and in a stream) look like, and
how a model list is shaped. The faults themselves live in `_faults.py`, once for every format.

Shapes follow the providers' documentation: OpenAI's error object; Gemini's google.rpc status
(https://ai.google.dev/gemini-api/docs/troubleshooting); Anthropic's typed errors and `error`
stream event (https://docs.claude.com/en/api/errors); Cohere's `{"message"}` bodies (an invalid
key is 401 "invalid api token"); Cloudflare's v4 envelope with Workers AI error codes
(https://developers.cloudflare.com/workers-ai/platform/errors/). Azure OpenAI's dialect lives
with its routes (`_azure.py`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from . import _responses as R
from ._error_bodies import default_error_body, default_wrapped_error
from ._scenario import Scenario

JsonObject = dict[str, Any]


def named_sse(event: str, payload: Any) -> bytes:
    """An SSE event with an `event:` line, as Anthropic and Cohere frame theirs."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def bearer(request: web.Request) -> str:
    """The bearer token; a missing header is key "" (so "no key" can have its own scenario)."""
    header = request.headers.get("Authorization", "").strip()
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return header


class Dialect:
    """OpenAI's way, and the base of the others."""

    name = "openai"
    stream_content_type = "text/event-stream"

    def api_key(self, request: web.Request) -> str:
        return bearer(request)

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        return default_error_body(status, message)

    def error_headers(self, status: int, body: JsonObject) -> dict[str, str]:
        """Headers an error reply carries beside its body (Bedrock names its exception in one)."""
        return {}

    def blocked_events(self, body: JsonObject) -> list[bytes]:
        """A stream's events for a refusal that comes as a 2xx body (`blocked_reply`)."""
        return [R.sse(body)]

    def blocked_reply(self, reason: str) -> tuple[int, JsonObject]:
        """The content filter's refusal (Scenario.blocked), as OpenAI says it."""
        message = f"Your request was rejected as a result of our safety system ({reason})."
        body = default_error_body(400, message)
        body["error"]["code"] = "content_policy_violation"
        return 400, body

    def invalid_key(self) -> tuple[int, JsonObject]:
        body = Scenario.invalid_key(style="openai").error_body
        return 401, dict(body) if body is not None else self.error_body(401)

    def error_reply(self, sc: Scenario) -> tuple[int, JsonObject]:
        """Status and body for an error scenario: its own body if it has one, else this
        provider's words for the status (or for an invalid key, `invalid_key_native`)."""
        if sc.error_body is not None:
            return sc.effective_status or 400, sc.error_body
        if sc.kind == "invalid_key_native":
            return self.invalid_key()
        status = sc.effective_status or 400
        return status, self.error_body(status)

    def wrapped_inner(self, sc: Scenario) -> JsonObject:
        """The scenario's error object (without its `error` wrapper); when it gives none (unset
        or `{}`), this provider's own server error."""
        if not sc.wrapped_error:
            return self.default_wrapped()
        return dict(sc.wrapped_error_body()["error"])

    def default_wrapped(self) -> JsonObject:
        return dict(default_wrapped_error()["error"])

    def wrapped_body(self, sc: Scenario) -> JsonObject:
        """An HTTP 200 body that is an error."""
        return {"error": self.wrapped_inner(sc)}

    def wrapped_event(self, sc: Scenario) -> bytes:
        return R.sse(self.wrapped_body(sc))

    def model_list(self, models: list[str]) -> JsonObject:
        return R.models_response(models)

    def refusal(self, request: web.Request) -> tuple[int, JsonObject] | None:
        """Status and body when the request is refused before anything else (a provider that
        requires a header or a query parameter); None when it is not."""
        return None

    def chat_problem(self, request: web.Request, body: JsonObject) -> str | None:
        """Why this provider refuses a chat body OpenAI takes (a 400 saying so); None when it
        takes it."""
        return None

    def reply_headers(self, sc: Scenario) -> dict[str, str]:
        """Headers this provider adds to the scenario's (OpenAI's: none)."""
        return {}

    def completion(self, completion: JsonObject) -> JsonObject:
        """An OpenAI-dialect chat completion as this provider sends it (OpenAI's: as it is)."""
        return completion

    def stream_events(self, answer: R.ChatAnswer, include_usage: bool) -> tuple[list[bytes], int]:
        """An OpenAI-dialect stream's events, and how many precede its finish_reason chunk."""
        return R.stream_events(answer, include_usage)


class _OwnWordsDialect(Dialect):
    """A provider whose content filter refusal is a 400 in its own error shape; the words are
    Anthropic's ("Output blocked by content filtering policy")."""

    def blocked_reply(self, reason: str) -> tuple[int, JsonObject]:
        return 400, self.error_body(400, f"Output blocked by content filtering policy ({reason})")


# https://cloud.google.com/apis/design/errors#handling_errors: HTTP status ↔ google.rpc code.
_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GEMINI_MESSAGES = {
    # Gemini's 429 for a per-minute or per-day limit reads like a billing failure.
    429: "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


class GeminiDialect(Dialect):
    name = "gemini"

    def api_key(self, request: web.Request) -> str:
        return request.headers.get("x-goog-api-key", request.query.get("key", "")).strip()

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        text = message or _GEMINI_MESSAGES.get(status) or f"Fake upstream error: {_phrase(status)}"
        code = _GRPC_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return {"error": {"code": status, "message": text, "status": code}}

    def invalid_key(self) -> tuple[int, JsonObject]:
        body = self.error_body(400, "API key not valid. Please pass a valid API key.")
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ]
        return 400, body

    def error_reply(self, sc: Scenario) -> tuple[int, JsonObject]:
        status, body = super().error_reply(sc)
        if status == 429 and sc.error_body is None:
            # The limit it hit, and (as RetryInfo, not a header) how long until it lifts.
            quota = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
            body["error"]["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": quota}],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{sc.retry_after or 1}s",
                },
            ]
        return status, body

    def default_wrapped(self) -> JsonObject:
        return {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}

    def blocked_reply(self, reason: str) -> tuple[int, JsonObject]:
        # https://ai.google.dev/api/generate-content#PromptFeedback: no candidates, a blockReason.
        feedback = {"blockReason": reason, "safetyRatings": []}
        usage = {"promptTokenCount": 1, "totalTokenCount": 1}
        return 200, {"promptFeedback": feedback, "usageMetadata": usage}

    def model_list(self, models: list[str]) -> JsonObject:
        return {"models": [{"name": f"models/{m}", "displayName": m} for m in models]}


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ANTHROPIC_MESSAGES = {
    401: "invalid x-api-key",
    429: "Number of request tokens has exceeded your per-minute rate limit "
    "(https://docs.anthropic.com/en/api/rate-limits); please try again later.",
    500: "Internal server error",
    529: "Overloaded",
}


class AnthropicDialect(_OwnWordsDialect):
    name = "anthropic"

    def api_key(self, request: web.Request) -> str:
        return request.headers.get("x-api-key", "").strip()

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        fallback = "api_error" if status >= 500 else "invalid_request_error"
        error = {
            "type": _ANTHROPIC_TYPES.get(status, fallback),
            "message": message or _ANTHROPIC_MESSAGES.get(status) or _phrase(status),
        }
        return {"type": "error", "error": error, "request_id": "req_fake"}

    def invalid_key(self) -> tuple[int, JsonObject]:
        return 401, self.error_body(401)

    def default_wrapped(self) -> JsonObject:
        return {"type": "overloaded_error", "message": "Overloaded"}

    def wrapped_body(self, sc: Scenario) -> JsonObject:
        return {"type": "error", "error": self.wrapped_inner(sc)}

    def wrapped_event(self, sc: Scenario) -> bytes:
        return named_sse("error", self.wrapped_body(sc))

    def model_list(self, models: list[str]) -> JsonObject:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in models
        ]
        return {"data": data, "has_more": False, "first_id": None, "last_id": None}


_COHERE_MESSAGES = {
    401: "invalid api token",
    402: "Please add or update your payment method to continue using the API.",
    429: "You are past the per minute request limit, please wait and try again later.",
    500: "internal server error, this has been reported to our developers",
    503: "service unavailable",
}


class CohereDialect(_OwnWordsDialect):
    name = "cohere"

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        text = message or _COHERE_MESSAGES.get(status) or f"Fake upstream error: {_phrase(status)}"
        return {"id": "fake-error", "message": text}

    def invalid_key(self) -> tuple[int, JsonObject]:
        return 401, self.error_body(401)

    def default_wrapped(self) -> JsonObject:
        return {"message": _COHERE_MESSAGES[500]}

    def wrapped_event(self, sc: Scenario) -> bytes:
        return named_sse("error", self.wrapped_body(sc))

    def model_list(self, models: list[str]) -> JsonObject:
        listed = [{"name": m, "endpoints": ["chat", "embed"]} for m in models]
        return {"models": listed, "next_page_token": None}


# Workers AI codes per status (errors page); 10000 is the v4 API's authentication error and 971
# its rate limit (Workers AI's 429 3040 "Out of capacity" is its capacity, not a rate limit:
# say it with `error_body`). For server errors, which have no documented code, the fake uses
# the HTTP status as the code.
_CLOUDFLARE_CODES = {
    400: (3003, "Bad input: request is missing headers or body"),
    401: (10000, "Authentication error"),
    403: (3023, "Service unavailable for account"),
    404: (3042, "The model name is invalid"),
    408: (3007, "Request timeout"),
    413: (3006, "Request is too large"),
    429: (971, "Please wait and consider throttling your request speed"),
}


def envelope(errors: list[JsonObject]) -> JsonObject:
    """Cloudflare's v4 failure envelope."""
    return {"result": None, "success": False, "errors": errors, "messages": []}


class CloudflareDialect(_OwnWordsDialect):
    name = "cloudflare"

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        code, text = _CLOUDFLARE_CODES.get(status, (status, _phrase(status)))
        return envelope([{"code": code, "message": message or text}])

    def invalid_key(self) -> tuple[int, JsonObject]:
        return 401, self.error_body(401)

    def default_wrapped(self) -> JsonObject:
        return {"code": 500, "message": "Internal server error"}

    def wrapped_body(self, sc: Scenario) -> JsonObject:
        return envelope([self.wrapped_inner(sc)])

    def model_list(self, models: list[str]) -> JsonObject:
        result = [{"id": f"fake-{i}", "name": m} for i, m in enumerate(models)]
        return {"result": result, "success": True, "errors": [], "messages": []}


OPENAI = Dialect()
GEMINI = GeminiDialect()
ANTHROPIC = AnthropicDialect()
COHERE = CohereDialect()
CLOUDFLARE = CloudflareDialect()


def model_list_dialect(request: web.Request) -> Dialect:
    """`GET /v1/models` is OpenAI's, Anthropic's and Cohere's path alike: Anthropic's clients
    send `anthropic-version`, Cohere's ask with `page_size`."""
    if "anthropic-version" in request.headers:
        return ANTHROPIC
    if "page_size" in request.query:
        return COHERE
    return OPENAI
