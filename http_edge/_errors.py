"""The edge's one error boundary: every failure becomes OpenAI's error JSON with an HTTP status.

Errors reaching a client, and where they come from::

    EdgeError               detected by the edge itself (body size, JSON, headers), or the codec
                            refused a field of the caller's payload (400, with `param`)
    clients.RouterError     the router answered with a gRPC status (status from `http_status_for`),
                            or gRPC did for it (`bare`: said in the edge's words, see
                            `router_error_body`)
    HTTPException           Starlette routing: unknown URL (404), wrong method (405)
    RequestValidationError  FastAPI parameter validation (400)
    Exception               a bug: 500 without a traceback in the body

On Anthropic's paths (`/v1/messages` and below) each is said in Anthropic's shape instead
(`{"type": "error", "error": {"type", "message"}}`), so its SDKs read an error raised before
the route runs (unknown sub-path, wrong method) as they read the route's own (`_routes_messages`).
On Gemini's (`/v1beta/…`, `/v1/models/{model}:{method}`, and `/v1/models…` when the caller
sends Google's key) each is said in Gemini's shape
(`{"error": {"code", "message", "status"}}`, `_routes_gemini`), for the same reason; and on
Ollama's (`/api/…`) in Ollama's (`{"error": "message"}`, `_routes_ollama`).

Errors after a stream has started are not HTTP responses; see `_routes_chat`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from clients import (
    ErrorDetails,
    RouterError,
    http_status_for,
    openai_error_body,
    said_in_callers_terms,
)

# The other APIs' codecs by package: their names are imported as first read (clients/_lazy.py).
from clients.codec import anthropic, gemini, ollama
from router_service._ids import MAX_ID_BYTES, shown_id

from ._headers import rate_limit_headers
from ._json import JSONBytesResponse
from ._should_retry import MaybeDoneError, should_retry

__all__ = [
    "CLIENT_CLOSED",
    "EdgeError",
    "anthropic_caller",
    "anthropic_path",
    "callers_message",
    "client_closed",
    "error_body",
    "error_response",
    "gemini_path",
    "google_caller",
    "in_callers_terms",
    "install_error_handlers",
    "ollama_path",
    "response_for",
    "retry_after_headers",
    "router_error_body",
    "router_error_headers",
    "shown_path",
]

log = logging.getLogger("http_edge")

Handler = Callable[[Request, Exception], Awaitable[Response]]

# What of a request's path errors, logs and spans repeat: a route's with two ids at their
# longest fits; an attacker-sized id in one is cut (`shown_id`), never echoed whole.
_SHOWN_PATH_BYTES = 4 * MAX_ID_BYTES


def shown_path(path: str) -> str:
    return shown_id(path, _SHOWN_PATH_BYTES)


class EdgeError(Exception):
    """An error the edge answers itself: a refused request, or a call it had to abandon."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None,
        type: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type = type
        self.param = param
        self.headers = headers


CLIENT_CLOSED = 499  # the status of `client_closed`


def client_closed() -> EdgeError:
    """The client went away before its answer: nobody reads this one; access logs call it 499."""
    return EdgeError(CLIENT_CLOSED, "The client closed the request.", code="client_closed")


def error_body(
    message: str, type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return JSONBytesResponse(body, status_code=status, headers=headers)


# What the caller reads for a status gRPC gave in the router's place; gRPC's own text names
# internal addresses ("ipv4:10.0.0.5:50051: Failed to connect…") and metadata, for the log only.
_BARE_MESSAGES = {
    "UNAVAILABLE": "The router is unavailable; try again shortly.",
    "METADATA_TOO_LARGE": "The request's headers are too large to forward to the router.",
    "MESSAGE_TOO_LARGE": "The request or its answer is over the router connection's size limit.",
}


def router_error_body(details: ErrorDetails) -> dict[str, Any]:
    """OpenAI's error JSON for a router error, with gRPC's own words replaced (and logged)."""
    public = _BARE_MESSAGES.get(details.reason) if details.bare else None
    if public is not None:
        log.warning("router call failed: %s: %s", details.code.name, details.message)
        details = dataclasses.replace(details, message=public)
    return openai_error_body(details)


# A missing key's refusal as the callers of the other APIs send their key (the router's names
# OpenAI's `authorization: Bearer`, which those SDKs never send).
_MISSING_KEY = {
    "anthropic": "Missing client key: send it in the `x-api-key` header.",
    "gemini": (
        "Missing client key: send it in the `x-goog-api-key` header or the `key` query "
        "parameter (`?key=`)."
    ),
}


def callers_message(body: dict[str, Any], api: str) -> str:
    """The message of `body` (OpenAI's error JSON) as said to the callers of `api`
    (`anthropic`, `gemini`): a missing key's names where they send it."""
    error = body["error"]
    if error.get("code") == "missing_api_key":
        return _MISSING_KEY[api]
    return str(error.get("message") or "")


def router_error_headers(details: ErrorDetails, *, maybe_done: bool = False) -> dict[str, str]:
    """A router error's headers: `Retry-After` when the router gave one, the caller's
    `x-ratelimit-*` when its own rpm or tpm refused it, and `x-should-retry` where the edge
    knows whether an SDK's retry can help (`_should_retry.py`)."""
    headers: dict[str, str] = {}
    retry = should_retry(details, maybe_done=maybe_done)
    if retry is not None:
        headers["x-should-retry"] = retry
    if details.retry_after_s is not None and details.retry_after_s > 0:
        headers.update(retry_after_headers(details.retry_after_s))
    if details.rate_limit is not None:
        headers.update(rate_limit_headers(details.rate_limit))
    return headers


def retry_after_headers(seconds: float) -> dict[str, str]:
    """`Retry-After` (whole seconds, rounded up) and OpenAI's `retry-after-ms`."""
    return {
        "retry-after": str(math.ceil(seconds)),
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }


@contextmanager
def in_callers_terms(field_of: Callable[[str | None], str | None]) -> Iterator[None]:
    """The router's refusal of an OpenAI field (`max_tokens` above `server.max_tokens_ceiling`,
    `n` above `server.max_n`…) said of the field the caller set, in its own API's words
    (`field_of`: its codec's, None for a field it did not send), as the codec's own are; an
    upstream's refusal stays in the upstream's words (`said_in_callers_terms`)."""
    try:
        yield
    except RouterError as exc:
        said = said_in_callers_terms(exc.details, field_of)
        if said is exc.details:
            raise
        raise RouterError(said) from exc


def anthropic_path(path: str) -> bool:
    """Whether `path` is one of Anthropic's Messages API (whose callers read its error shape)."""
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def anthropic_caller(request: HTTPConnection) -> bool:
    """Whether the caller speaks Anthropic's API: on one of its paths, or on `/v1/models…`
    (OpenAI's and Anthropic's both) with `anthropic-version`, which every Anthropic SDK sends
    and no OpenAI client does (Google's key first: Gemini's v1 is there too)."""
    path = request.scope["path"]
    if anthropic_path(path):
        return True
    if path != "/v1/models" and not path.startswith("/v1/models/"):
        return False
    return "anthropic-version" in request.headers and not google_caller(request)


def gemini_path(path: str) -> bool:
    """Whether `path` is only the Gemini API's (whose callers read its error shape): all of
    `/v1beta/`, and a model's methods under `/v1/`."""
    if path.startswith("/v1beta/"):
        return True
    return path.startswith("/v1/models/") and path.rpartition(":")[2] in gemini.METHODS


def ollama_path(path: str) -> bool:
    """Whether `path` is one of Ollama's API (`/api/…`: no other route of the edge is there)."""
    return path.startswith("/api/")


def google_caller(request: HTTPConnection) -> bool:
    """Whether the caller speaks the Gemini API: on one of its paths, or on `/v1/models…`
    (OpenAI's and Gemini's v1 both) with Google's key (`x-goog-api-key` or `?key=`), which
    no OpenAI client sends."""
    path = request.scope["path"]
    if gemini_path(path):
        return True
    if path != "/v1/models" and not path.startswith("/v1/models/"):
        return False
    return "x-goog-api-key" in request.headers or "key" in request.query_params


def _answer(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """`body` (OpenAI's error JSON) as the caller's API says it."""
    if anthropic_caller(request):
        message = callers_message(body, "anthropic")
        body = anthropic.anthropic_error(anthropic.anthropic_error_type(status), message)
    elif google_caller(request):
        body = gemini.gemini_error(status, callers_message(body, "gemini"))
    elif ollama_path(request.scope["path"]):
        body = ollama.ollama_error(str(body["error"].get("message") or ""))
    return error_response(status, body, headers)


async def _on_edge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EdgeError)
    body = error_body(exc.message, exc.type, exc.code, exc.param)
    return _answer(request, exc.status, body, exc.headers)


async def _on_router_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RouterError)
    details = exc.details
    headers = router_error_headers(details, maybe_done=isinstance(exc, MaybeDoneError))
    return _answer(request, http_status_for(details), router_error_body(details), headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    message = str(first.get("msg", "Invalid request"))
    param = ".".join(loc) or None
    return _answer(
        request, 400, error_body(message, "invalid_request_error", "invalid_value", param)
    )


async def _on_http_exception(
    request: Request, exc: Exception, routes: Sequence[BaseRoute] = ()
) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {shown_path(request.url.path)}"
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        body = error_body(f"Unknown request URL: {where}", "invalid_request_error", "unknown_url")
    elif exc.status_code == 405:
        message = f"Method not allowed: {where}"
        body = error_body(message, "invalid_request_error", "method_not_allowed")
        headers["Allow"] = _allowed(request, headers.get("Allow", ""), routes)
    else:
        body = error_body(str(exc.detail), _type_for_status(exc.status_code))
    return _answer(request, exc.status_code, body, headers)


def _allowed(request: Request, allow: str, routes: Sequence[BaseRoute]) -> str:
    """A 405's `Allow`: the methods of every route on its path (Starlette's `allow` names only
    the first route's: `GET /v1/responses/{id}` and its `DELETE` are two), and HEAD wherever
    GET is (`_hot.HeadAsGet` answers it)."""
    methods = {method.strip() for method in allow.split(",") if method.strip()}
    for route in routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods.update(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # The traceback is logged (Starlette's ServerErrorMiddleware, or `response_for`); the caller
    # only learns that it failed.
    body = error_body("The edge failed to handle the request.", "server_error", "internal_error")
    return _answer(request, 500, body)


def _type_for_status(status: int) -> str:
    return "server_error" if status >= 500 else "invalid_request_error"


# The errors an endpoint raises, and their responses: one table for FastAPI's handlers and for the
# routes served outside its routing (`_hot.HotRoutes`). Routing's own errors come after.
_ENDPOINT_ERRORS: tuple[tuple[type[Exception], Handler], ...] = (
    (EdgeError, _on_edge_error),
    (RouterError, _on_router_error),
)


async def response_for(request: Request, exc: Exception) -> Response:
    """The response FastAPI's handlers give `exc`, for routes served outside its routing
    (`_hot.HotRoutes`); a bug is logged with its traceback here, as Starlette would."""
    for kind, handler in _ENDPOINT_ERRORS:
        if isinstance(exc, kind):
            return await handler(request, exc)
    log.error("Exception in %s %s", request.method, shown_path(request.url.path), exc_info=exc)
    return await _on_unexpected(request, exc)


def install_error_handlers(app: FastAPI, routes: Sequence[BaseRoute] = ()) -> None:
    """Route every exception class the edge knows about to its OpenAI-shaped response;
    `routes`, the app's, name the methods a 405's `Allow` lists."""
    for kind, handler in _ENDPOINT_ERRORS:
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, partial(_on_http_exception, routes=tuple(routes)))
    app.add_exception_handler(Exception, _on_unexpected)
