"""The hot path: `POST /v1/chat/completions`, `/v1/responses`, `/v1/completions`,
`/v1/embeddings` and Anthropic's `/v1/messages` without FastAPI's routing.

Every call of an OpenAI client goes through one of these routes. Through FastAPI they pay for
route matching over every registered route, Starlette's error, body-limit and exception
middlewares, the per-request exit stack and dependency solving (none of which they use): about a
fifth of the edge's CPU per request in `benchmarks.profile`. `HotRoutes` wraps Starlette's stack
(`_app.EdgeApp`: inside the server telemetry and CORS, which still see every request), calls the
same endpoint functions directly and renders their exceptions with the same handlers FastAPI
would (`_errors.response_for`). The routes stay registered on the app, so the OpenAPI document
still describes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import (
    _routes_chat,
    _routes_completions,
    _routes_messages,
    _routes_misc,
    _routes_responses,
)
from ._errors import response_for
from ._sse import HEAD_ONLY

__all__ = ["HOT_PATHS", "HeadAsGet", "HotRoutes"]

Endpoint = Callable[[Request], Awaitable[Response]]

_ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v1/chat/completions"): _routes_chat.chat_completions,
    ("POST", "/v1/responses"): _routes_responses.responses,
    ("POST", "/v1/completions"): _routes_completions.completions,
    ("POST", "/v1/embeddings"): _routes_misc.embeddings,
    ("POST", "/v1/messages"): _routes_messages.messages,
}

HOT_PATHS = frozenset(path for _, path in _ENDPOINTS)


class HotRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            _ENDPOINTS.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = await response_for(request, exc)
        await response(scope, receive, send)


class HeadAsGet:
    """HEAD is answered as GET without the body, on every GET route (FastAPI's routes, unlike
    Starlette's, do not take HEAD by themselves). The headers are GET's, content-length too.
    A stream (`SSEResponse`, marked `HEAD_ONLY`) ends after its headers and is closed.
    `own`: the routes that take HEAD themselves (Ollama's blob check), answered as routed."""

    def __init__(self, app: ASGIApp, own: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.own = tuple(own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or self._routed(scope):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_ONLY: True}, receive, headers_only)

    def _routed(self, scope: Scope) -> bool:
        """Whether a route of its own takes this HEAD."""
        return any(route.matches(scope)[0] is Match.FULL for route in self.own)
