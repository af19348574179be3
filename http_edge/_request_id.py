"""`x-request-id` on every answer, as OpenAI sends it (the `openai` SDK reads it into
`response._request_id` and its errors' `request_id`): what a user quotes when something went
wrong, and what an operator looks up.

The caller's own `x-request-id` comes back when it sent one (the edge also forwards it to the
router); else the id is the request's trace id, so the id a user quotes finds its trace, or a
random one when nothing traces. Anthropic's callers (`/v1/messages…`, and `/v1/models…` with
`anthropic-version`) get it in Anthropic's `request-id` too, which its SDKs read
(`message._request_id`, an error's `request_id`).

Beside it, OpenAI's `openai-processing-ms`: the milliseconds from the request's arrival to its
answer's headers (a stream's first event), on the edge's clock.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.telemetry._current import current_span

from ._errors import anthropic_caller
from ._metadata import forwardable

__all__ = ["RequestId", "fresh_request_id", "request_id"]

_HEADER = b"x-request-id"
_ANTHROPIC_HEADER = b"request-id"
_PROCESSING_HEADER = b"openai-processing-ms"


class RequestId:
    def __init__(self, app: ASGIApp, clock: Clock = SYSTEM_CLOCK) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = self.clock.monotonic()
        anthropics = anthropic_caller(HTTPConnection(scope))

        async def identified(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                answer_id = request_id(scope)
                headers.append((_HEADER, answer_id))
                took = round((self.clock.monotonic() - arrived) * 1000)
                headers.append((_PROCESSING_HEADER, str(took).encode()))
                if anthropics:
                    headers.append((_ANTHROPIC_HEADER, answer_id))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, identified)


def request_id(scope: Scope) -> bytes:
    """The id of the request of `scope`: its caller's, its trace's, or a fresh one."""
    for name, value in scope["headers"]:
        if name == _HEADER:
            # No echo of what the edge refuses to forward (`_metadata`).
            if forwardable("x-request-id", value.decode("latin-1")):
                return bytes(value)
            break
    context = current_span().get_span_context()
    if context.is_valid:
        return trace.format_trace_id(context.trace_id).encode()
    return fresh_request_id()


def fresh_request_id() -> bytes:
    """A new id, for an answer to a request not (or not wholly) read: a refusal of the
    connection (`_slow_clients`). Unique is all an id must be: 16 random bytes (a getrandom
    call, 0.7 µs; uuid4 builds an object around them, 2.4 µs)."""
    return os.urandom(16).hex().encode()
