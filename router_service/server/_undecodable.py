"""Requests whose bytes are no valid message (invalid UTF-8 in a string, a corrupt or cut wire
format): their deserializer hands over an `Undecodable` instead of raising (which grpc would
log as a traceback and answer UNKNOWN without details), and the interceptor refuses them as
INVALID_ARGUMENT. The methods open to every caller (health's Watch, reflection) get the same
(`refusing`): grpc answered theirs UNKNOWN, with protobuf's exception as the status message."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from clients import to_grpc_status
from router_service.errors import InvalidRequestError
from router_service.server._errors import error_details

__all__ = ["Undecodable", "decoded", "refuse_undecodable", "refusing", "tolerant"]


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


def refusing(handler: Any) -> Any:
    """An open method's `handler` (no rule admits its calls: health's Watch, reflection) whose
    undecodable requests are refused as INVALID_ARGUMENT, as those of the methods the
    interceptor admits are; kept as it is if it is of a kind none of those has."""
    deserializer = tolerant(handler.request_deserializer)
    serializer = handler.response_serializer
    if handler.unary_stream is not None:
        behavior = handler.unary_stream
        return grpc.unary_stream_rpc_method_handler(
            _unary_stream(behavior),
            request_deserializer=deserializer,
            response_serializer=serializer,
        )
    if handler.stream_stream is not None and inspect.isasyncgenfunction(handler.stream_stream):
        return grpc.stream_stream_rpc_method_handler(
            _bidi(handler.stream_stream),
            request_deserializer=deserializer,
            response_serializer=serializer,
        )
    return handler


def _unary_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def streamed(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await refuse_undecodable(request, context)
            async with aclosing(behavior(request, context)) as messages:
                async for message in messages:
                    yield message

        return streamed

    # Written with `context.write` (grpc's health servicer's Watch): a coroutine stays one.
    async def written(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await refuse_undecodable(request, context)
        return await behavior(request, context)

    return written


def _bidi(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def bidi(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        async with aclosing(behavior(_checked(requests, context), context)) as messages:
            async for message in messages:
                yield message

    return bidi


async def _checked(
    requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
) -> AsyncIterator[Any]:
    """The call's messages; one that is no valid message ends the call (abort raises)."""
    async for request in requests:
        await refuse_undecodable(request, context)
        yield request
