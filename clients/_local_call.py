"""One call on a ``LocalChannel``: the caller's side behaves as grpc.aio's call objects (await
it, ``read``, ``write``, ``cancel``, ``code()``…); the handler runs in a task of its own.

The handler's task starts from an empty ``contextvars.Context``, as the router's handlers run
in their own process: what the router sets (the caller, its standing, a trace span) does not
reach the edge's task, nor the edge's request context the router's (a traced caller's span context
travels in the call's metadata, as on the wire: `router_service.telemetry._grpc.LOCAL_PARENT`).

Messages cross serialized, as on the wire. Handing the objects over would save a serialize and
a parse per message (~4 µs each for the bench's chat request and answer, against ~1 ms the hop
cost), but the router writes into its answers (`_interceptors._tell_route`), a ChatStream request
lets go of its prompt once serialized (`_stream.SentOnce`), the size limit and the refusal of
undecodable requests are defined on bytes: each side keeps its own message, and nothing of
either's code is audited for sharing. The request's bytes go once parsed (`_request`)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import grpc

from clients._local_context import LocalContext
from clients._local_limits import answer_refused, metadata_refused, request_refused, send_refused
from clients._mailbox import Ended

if TYPE_CHECKING:
    from clients._local import LocalHandlers

__all__ = ["END", "LocalCall", "UnaryCall"]

# grpc.aio's logger: a handler's unexpected exception is logged where it logs it.
log = logging.getLogger("grpc._cython.cygrpc")

END = object()  # a stream's (or a request stream's) end
# How long after its deadline the caller's side gives up on a call: a moment for the handler's
# own answer at that deadline (the router's, which says what it was waiting for) to arrive
# first, as it does on the wire, where the server's deadline comes a transit before. A window,
# not a rule: the router's answer comes after its own timer (armed later, on its clock) and the
# clean-up before it answers (its lease given back: Redis), neither of which the caller sees.
_DEADLINE_TRANSIT_S = 0.02
Status = tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]]


class LocalCall(ABC):
    """What the caller holds: status, metadata, done callbacks, deadline, cancel."""

    _READ_TO_END = False  # its status is the caller's once it has read every message
    _payload: Any = None  # its request's bytes, until its handler takes them

    def __init__(
        self,
        method: str,
        metadata: tuple[tuple[str, Any], ...],
        timeout: float | None,
        serialize: Callable[[Any], bytes] | None,
        deserialize: Callable[[bytes], Any] | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._method = method
        self._metadata = metadata
        self._serialize = serialize
        self._deserialize = deserialize
        self._deadline = None if timeout is None else self._loop.time() + timeout
        # When the caller's side gives up (its channel's timer calls `expire`), if ever.
        self.expiry = None if self._deadline is None else self._deadline + _DEADLINE_TRANSIT_S
        # The status the call ended with, and once its caller has it (`_complete`); its trailing
        # metadata as given, made a `grpc.aio.Metadata` only when asked (most calls never are).
        self._final: Status | None = None
        self._status: Status | None = None
        self._trailing: grpc.aio.Metadata | None = None
        self._ended = Ended()
        self._callbacks: list[Callable[[Any], None]] = []
        self._locally_cancelled = False
        self.ended_by_caller = False  # cancelled or past its deadline (the context's `cancelled`)
        self._initial: grpc.aio.Metadata | None = None  # made when sent or asked for
        self._task: asyncio.Task[None] | None = None

    def start(self, handlers: LocalHandlers, limits: tuple[float, float, float]) -> None:
        # The largest answer, request (or Realtime message) and trailers (`LocalContext`) of it.
        self._receive_limit, self._send_limit, self.metadata_limit = limits
        self._limit = handlers.max_request_bytes  # the largest the router takes
        if self._too_large(self._request_size()) or self._refused(handlers):
            return
        context = LocalContext(self, self._metadata, self._deadline)
        self._task = self._loop.create_task(
            self._serve(handlers, context),
            name=f"switchboard-local{self._method}",
            context=contextvars.Context(),
        )

    async def _serve(self, handlers: LocalHandlers, context: LocalContext) -> None:
        try:
            # Again: a stop since `start` has not seen this task (`find` makes it seen).
            if self._refused(handlers):
                return
            handler = await handlers.find(self._method, self._metadata)
            if handler is None:
                self.finish(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
                return
            await self._handle(handler, context)
        except grpc.aio.AbortError:
            pass  # its status is the caller's already
        except asyncio.CancelledError:
            # A server stop (the caller's own end is set before it cancels): grpc's words for
            # the calls a stop cuts, which a caller may retry elsewhere.
            self.finish(grpc.StatusCode.UNAVAILABLE, "Cancelling all calls", abrupt=True)
            raise
        except Exception as exc:
            if self._final is None:
                name = type(exc).__name__
                log.exception("Unexpected [%s] raised by servicer method [%s]", name, self._method)
            self.finish(*context.failed(exc))
        else:
            self.finish(*context.ended())

    async def answer(self, message: Any) -> None:
        """A handler's `context.write`: only a stream's handler writes its answers."""
        raise grpc.aio.UsageError("a unary call's handler returns its answer")

    @abstractmethod
    async def _handle(self, handler: grpc.RpcMethodHandler, context: LocalContext) -> None:
        """Run the handler: a unary one's answer, a stream's messages (the subclasses')."""

    def _refused(self, handlers: LocalHandlers) -> bool:
        """Whether the server has stopped taking calls (UNAVAILABLE) or refuses its metadata."""
        if not handlers.serving:
            self.finish(grpc.StatusCode.UNAVAILABLE, "The router has stopped taking calls.")
        elif (too_large := metadata_refused(self._metadata)) is not None:
            self.finish(grpc.StatusCode.RESOURCE_EXHAUSTED, too_large)
        return self._final is not None

    def _request(self, handler: grpc.RpcMethodHandler) -> Any:
        """The handler's request, parsed: its bytes held by neither the call nor its awaiter."""
        payload, self._payload = self._payload, None
        parse = handler.request_deserializer
        return payload if parse is None else parse(payload)

    def _request_size(self) -> int:
        return len(self._payload) if isinstance(self._payload, bytes) else 0

    def _too_large(self, size: int) -> bool:
        """Whether a request is over its caller's limit or the server's: it ends as on the wire."""
        details = send_refused(size, self._send_limit) or request_refused(size, self._limit)
        if details is None:
            return False
        self.finish(grpc.StatusCode.RESOURCE_EXHAUSTED, details, abrupt=True)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        return True

    def finish(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing: tuple[tuple[str, Any], ...] = (),
        *,
        abrupt: bool = False,
    ) -> None:
        """End the call with this status (the first one given wins, but the caller's own end
        wins over one it has not read yet). `abrupt`: the caller's cancellation or deadline,
        which drops what it has not read yet. A stream's status reaches its caller after its
        last message, as on the wire: it is done once that is read."""
        if self._status is not None or (self._final is not None and not abrupt):
            return
        self._final = (code, details, trailing)
        self._ending(abrupt)
        if abrupt or not self._READ_TO_END or self._all_read():
            self._complete()

    def _complete(self) -> None:
        """The status is the caller's: done, its waiters and callbacks told."""
        if self._status is not None or self._final is None:
            return
        self._status = self._final
        self._ended.set()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def _ending(self, abrupt: bool) -> None:  # noqa: B027 - a default: unary calls have no reader
        """A subclass's reader learns of the end."""

    def _all_read(self) -> bool:
        """Whether a stream's caller has read its every message (only its end is left)."""
        return False

    def expire(self) -> None:
        """Its deadline passed (and a transit after it) with its handler still running."""
        if self._final is None:
            self._end_by_caller(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    def _end_by_caller(self, code: grpc.StatusCode, details: str) -> bool:
        if self._status is not None:
            return False
        self.ended_by_caller = True
        self.finish(code, details, abrupt=True)
        if self._task is not None:
            self._task.cancel()  # the handler sees CancelledError, as grpc.aio's
        return True

    def _raise_for_status(self) -> None:
        assert self._status is not None
        if self._locally_cancelled:
            raise asyncio.CancelledError()
        code, details, _trailing = self._status
        if code is not grpc.StatusCode.OK:
            raise grpc.aio.AioRpcError(
                code, self.initial, self._trailing_metadata(), details, f"{code.name}:{details}"
            )

    @property
    def initial(self) -> grpc.aio.Metadata:
        """The handler's initial metadata (`LocalContext.send_initial_metadata` sets it)."""
        if self._initial is None:
            self._initial = grpc.aio.Metadata()
        return self._initial

    @initial.setter
    def initial(self, metadata: grpc.aio.Metadata) -> None:
        self._initial = metadata

    def _trailing_metadata(self) -> grpc.aio.Metadata:
        assert self._status is not None
        if self._trailing is None:
            self._trailing = grpc.aio.Metadata(*self._status[2])
        return self._trailing

    # -- grpc.aio.Call ---------------------------------------------------------------------

    def cancel(self) -> bool:
        self._locally_cancelled = self._status is None
        return self._end_by_caller(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")

    def cancelled(self) -> bool:
        return self._status is not None and self._status[0] is grpc.StatusCode.CANCELLED

    def done(self) -> bool:
        return self._status is not None

    def handled(self) -> bool:
        """Whether the handler's side is over (the server context's `done`)."""
        return self._final is not None

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self._status is not None:
            callback(self)
        else:
            self._callbacks.append(callback)

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(self._deadline - self._loop.time(), 0.0)

    async def ended(self) -> None:
        await self._ended.wait()

    async def initial_metadata(self) -> grpc.aio.Metadata:
        return self.initial

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        await self._ended.wait()
        return self._trailing_metadata()

    async def code(self) -> grpc.StatusCode:
        await self._ended.wait()
        assert self._status is not None
        return self._status[0]

    async def details(self) -> str:
        await self._ended.wait()
        assert self._status is not None
        return self._status[1]

    async def wait_for_connection(self) -> None:  # noqa: B027 - grpc.aio's API, nothing to wait for
        """Connected at once: there is no connection."""


class UnaryCall(LocalCall):
    """A unary call: awaiting it gives the answer or raises ``AioRpcError``."""

    def __init__(self, *args: Any, payload: Any) -> None:
        super().__init__(*args)
        self._payload = payload
        self._response: Any = None

    async def _handle(self, handler: grpc.RpcMethodHandler, context: LocalContext) -> None:
        response = await handler.unary_unary(self._request(handler), context)
        if context.ended()[0] is grpc.StatusCode.OK:
            serialize = handler.response_serializer
            self._response = response if serialize is None else serialize(response)
            refused = answer_refused(self._response, self._receive_limit)
            if refused is not None:  # only its caller fails (the handler is done), as on the wire
                self.finish(grpc.StatusCode.RESOURCE_EXHAUSTED, refused)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        try:
            await self._ended.wait()
        except asyncio.CancelledError:
            self.cancel()  # as grpc.aio: the awaiting task's cancellation cancels the call
            raise
        self._raise_for_status()
        return self._response if self._deserialize is None else self._deserialize(self._response)
