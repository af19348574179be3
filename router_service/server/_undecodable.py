"""Requests whose bytes are no valid message (invalid UTF-8 in a string, a corrupt or cut wire
format): their deserializer hands over an `Undecodable` instead of raising (which grpc would
log as a traceback and answer UNKNOWN without details), and the interceptor refuses them as
INVALID_ARGUMENT."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from clients import to_grpc_status
from router_service.errors import InvalidRequestError
from router_service.server._errors import error_details

__all__ = ["Undecodable", "decoded", "refuse_undecodable", "tolerant"]


class Undecodable:
    """What a request becomes whose bytes are no valid message; the handler refuses it."""

    __slots__ = ("error",)

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as exc:
            return Undecodable(exc)

    return parse


async def refuse_undecodable(request: Any, context: grpc.aio.ServicerContext) -> None:
    if isinstance(request, Undecodable):
        # protobuf's message names the type and the fault, never the bytes.
        error = InvalidRequestError(
            f"The request is not a valid message: {request.error}.", code="invalid_message"
        )
        await context.abort_with_status(to_grpc_status(error_details(error)))


async def decoded(first: Any, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A bidirectional call's messages, its first (already read) again; a message that is no
    valid one ends it as INVALID_ARGUMENT (raised to the handler)."""
    yield first
    async for request in requests:
        if isinstance(request, Undecodable):
            raise InvalidRequestError(
                f"The request is not a valid message: {request.error}.", code="invalid_message"
            )
        yield request
