"""`edge.body_timeout_s`: how long a request's body may take to arrive once its head has
(`_slow_clients` holds the connection's other limits)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import EdgeError
from ._slow_clients import BODY_COMPLETE, CONNECTION

__all__ = ["BodyDeadline"]


class BodyDeadline:
    """Bounds the time a request's body takes to arrive: a `receive` past the deadline raises
    a 408 `EdgeError` (the routes render it). Once the body is complete, `receive` is the
    server's own again (a wait for the client's disconnect has no deadline)."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(BODY_COMPLETE):
            # Read whole already (with the head, as a small JSON body is): nothing to time, and
            # a timeout per `receive` cost the edge ~3 % of its instructions a request.
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        complete = False

        async def bounded() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                if (connection := scope.get(CONNECTION)) is not None:
                    connection.linger_at_close()  # the client may send the rest yet
                raise EdgeError(
                    408,
                    f"The request body did not arrive within {self.timeout_s:g} s.",
                    code="request_timeout",
                    headers={"connection": "close"},  # the rest of it is not worth waiting for
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)
