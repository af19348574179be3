"""The outermost server interceptor: a streamed call's messages are written by the call's own
task (`context.write`), not yielded to grpc. grpc sends a yielded message outside the handler's
generator; a call cancelled there (its caller left, a stop) ended its task with the generator
still open, closed later by the garbage collector in a task of its own. The generators' cleanup
(the stream slot, the key lease, their renewals, the usage settled, the call's `leave`) then
outlived the call's task, which a stop waits for before it closes the store (`_running.py`).
Written here, every layer's generator (tracing's, the auth interceptor's, the handler's) is
closed in the call's task, on every path; the in-process transport takes such a handler too
(`clients._local_stream`)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc

from router_service._wrapped_handlers import WrappedHandlers

__all__ = ["WrittenStreams"]

Generating = Callable[[Any, grpc.aio.ServicerContext], AsyncGenerator[Any, None]]


class WrittenStreams(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Streamed handlers (unary-stream and bidirectional) made coroutines that write their
    generator's messages and close it before the call's task ends."""

    def __init__(self) -> None:
        self._written = WrappedHandlers(_handler)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._written.wrapped(handler_call_details.method, handler)


def _handler(_method: str, handler: Any) -> Any:
    """`handler` with its streamed behaviour written (`_written`); unary ones as they are."""
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if inspect.isasyncgenfunction(handler.unary_stream):
        return grpc.unary_stream_rpc_method_handler(_written(handler.unary_stream), **options)
    if inspect.isasyncgenfunction(handler.stream_stream):
        return grpc.stream_stream_rpc_method_handler(_written(handler.stream_stream), **options)
    return handler  # unary, or written already (grpc's health Watch)


def _written(behavior: Generating) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]:
    async def write(request: Any, context: grpc.aio.ServicerContext) -> None:
        async with aclosing(behavior(request, context)) as messages:
            async for message in messages:
                await context.write(message)
                del message  # not held while the stream waits for its next

    return write
