"""CORS for browser clients (`edge.cors_origins`), with refusals in OpenAI's error JSON; a
page on a public origin may call an edge on a private network (Private Network Access)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httptools
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._admin_query import admin_path
from ._errors import error_body, error_response
from ._headers import RATE_LIMIT_HEADERS, ROUTE_HEADERS
from ._paths import tidied
from ._settings import EdgeSettings

__all__ = ["RawHeaders", "RefusalCors", "cors_middleware", "refusal_cors", "url_path"]

# The CORS headers of an answer to a request with these headers (`refusal_cors`).
RawHeaders = list[tuple[bytes, bytes]]
RefusalCors = Callable[[RawHeaders, str], RawHeaders]

# Response headers a browser client may read.
_EXPOSED_HEADERS = [
    *ROUTE_HEADERS,
    *RATE_LIMIT_HEADERS,
    "age",
    "location",  # a WebRTC call's (`POST /v1/realtime/calls`): the page's id for its hangup
    "retry-after",
    "retry-after-ms",
    "x-should-retry",  # whether the SDKs retry an error (`_should_retry.py`)
    "x-request-id",  # the SDKs' `_request_id`, what a user quotes
    "request-id",  # Anthropic's SDKs' (`_request_id`)
    "openai-processing-ms",
]


class _EdgeCORS(CORSMiddleware):
    """Starlette's CORS, whose refused preflight ("Disallowed CORS origin, method") is plain
    text; here it is a 400 like every other refusal of the edge, with the same CORS headers.
    The admin paths have none: their page is the edge's own, so no other origin's page may
    send them the token's guesses with a browser's help, nor read their answers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and admin_path(scope["path"]):
            await self.app(scope, receive, send)  # a preflight too: the app's 405 refuses it
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        kept = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-type", "content-length")
        }
        message = f"{bytes(response.body).decode()}."
        return error_response(400, error_body(message, "invalid_request_error", "cors"), kept)

    def answer_headers(
        self, request_headers: list[tuple[bytes, bytes]], path: str
    ) -> list[tuple[bytes, bytes]]:
        """The CORS headers Starlette's `send` gives an answer to a request with these headers
        to `path` (as the server decoded it, not yet tidied), for the answers the server writes
        outside the app (`_slow_clients`' refusals): none on an admin path, as `__call__`."""
        origin = Headers(raw=request_headers).get("origin")
        headers = MutableHeaders(raw=[])
        if origin is None or admin_path(tidied({"path": path or "/"})["path"]):
            return headers.raw
        headers.update(self.simple_headers)
        explicit = (
            self.allow_credentials if self.allow_all_origins else self.is_allowed_origin(origin)
        )
        if explicit:
            self.allow_explicit_origin(headers, origin)
        else:
            headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
        return headers.raw


def cors_middleware(settings: EdgeSettings) -> Middleware | None:
    """The CORS middleware for `settings.cors_origins`; None when it is empty (CORS off)."""
    if not settings.cors_origins:
        return None
    return Middleware(_EdgeCORS, **_options(settings))


def refusal_cors(settings: EdgeSettings) -> RefusalCors | None:
    """The CORS headers of the middleware's answers, for the refusals the server writes itself
    (`_slow_clients`: a head too large, past `max_connections`): without them a browser page
    sees a network error, not the status. None when CORS is off."""
    if not settings.cors_origins:
        return None
    return _EdgeCORS(_no_app, **_options(settings)).answer_headers


def url_path(url: bytes) -> str:
    """The path of a request line's target as uvicorn decodes it into `scope["path"]`; "" when
    it cannot be read (a refusal of a head httptools could not parse)."""
    try:
        path = httptools.parse_url(url).path
    except httptools.HttpParserInvalidURLError:
        return ""
    return unquote(path.decode("latin-1")) if path is not None else ""


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("refusal_cors's middleware only computes headers")


def _options(settings: EdgeSettings) -> dict[str, Any]:
    return {
        "allow_origins": settings.cors_origins,
        "allow_credentials": "*" not in settings.cors_origins,
        "allow_methods": ["GET", "HEAD", "POST", "DELETE", "OPTIONS"],  # DELETE: SDKs' deletes
        "allow_headers": ["*"],
        "expose_headers": _EXPOSED_HEADERS,
        # Chromium's Private Network Access: a page on a public origin (Kobold Lite's hosted
        # one) calling an edge on localhost or the LAN asks in its preflight; Starlette refuses
        # the whole preflight (400) unless allowed. Origins listed by name are the operator's
        # yes; `*` is not: it would let any public page drive an edge on a laptop or LAN (one
        # often without client keys, spending the operator's upstream keys).
        "allow_private_network": "*" not in settings.cors_origins,
    }
