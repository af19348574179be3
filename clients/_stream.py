"""One ``ChatStream`` call on the caller's side: the stream object, and the request shell that
lets go of the prompt once it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from clients._base import map_rpc_errors
from clients._cancelling import headers_came, interrupt_stream
from clients._loops import on_its_loop
from clients._ready import Start
from clients._stubs import checked_message
from clients.errors import ErrorDetails, RouterError
from clients.switchboard.v1 import router_service_pb2

__all__ = [
    "CallStream",
    "RouterMediaStream",
    "RouterRealtime",
    "RouterStream",
    "SentOnce",
    "StreamStart",
    "serialize_once",
]

# A write to a bidirectional call that has ended (grpc raises InvalidStateError, not an RpcError,
# when the router ended it with OK: a realtime session its upstream or a guardrail closed).
_CALL_ENDED = ErrorDetails(
    code=grpc.StatusCode.CANCELLED,
    message="The call has ended: nothing more can be sent on it.",
    reason="CANCELLED",
)

# What a server-streaming call's messages are.
M = TypeVar("M")
# What a stream's call failed with, for its client (`RouterClient._found_again`: a call that
# reached no router has the client look its router names up again).
Failed = Callable[[RouterError], Awaitable[None]]
# A stream's call as the client makes it: (grpc's call, started; or None and the `Start` that
# starts it at the first read or write), whether it is `ReadyGate.sent_once`, and `Failed`.
StreamStart = tuple[Any, Start | None, bool, Failed | None]


class SentOnce:
    """A request that lets go of its message once grpc has serialized it.

    grpc.aio's call keeps its request object until the call ends, and a stream is open for as
    long as the model writes: holding the message would hold the whole prompt per open stream
    (measured with 32 KiB prompts: ~32 KiB of every stream in the edge). The call keeps this
    shell instead; the message goes once sent, unless the caller still holds it.
    """

    __slots__ = ("_message",)

    def __init__(self, message: router_service_pb2.ChatStreamRequest) -> None:
        self._message: router_service_pb2.ChatStreamRequest | None = message

    def serialize(self) -> bytes:
        message, self._message = self._message, None
        if message is None:
            raise RuntimeError("a ChatStream request is serialized once")
        return message.SerializeToString()


def serialize_once(request: SentOnce) -> bytes:
    return request.serialize()


class CallStream(Generic[M]):
    """The messages of one server-streaming call: an async iterator and an async context manager.

    Leaving the ``async with`` block (or :meth:`aclose`) cancels the call, and the cancellation
    reaches the router, which aborts the upstream request: a caller that goes away stops paying.
    So does dropping a stream unclosed (a ``break`` out of ``async for``), as grpc's blocking
    calls do, once nothing holds it.
    To stop a task that may be waiting for a message, :meth:`interrupt` the stream rather than
    cancel the task: grpc.aio leaks a read cancelled in its await (clients/_cancelling.py).
    """

    _closed = True  # until made: `__del__` of one whose making failed has nothing to end

    def __init__(
        self,
        call: Any,
        late: Start | None = None,
        sent_once: bool = False,
        failed: Failed | None = None,
    ) -> None:
        """``call``: grpc's, started; or None and ``late``, which starts it at the first read.
        ``sent_once``: the call may reach a router and is not sent again (`ReadyGate.sent_once`).
        ``failed``: told what a read raises (its client's, `StreamStart`)."""
        self._loop = asyncio.get_running_loop()  # the call's: where `__del__` cancels it
        self._call = call
        self._late = late
        self._sent_once = sent_once
        self._failed = failed
        self._closed = False
        self._reading = False  # a task awaits a message: `interrupt` will end that wait

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> M:
        on_its_loop(self._loop, "stream")  # ~0.1 µs a message
        if self._closed:
            raise StopAsyncIteration
        self._reading = True
        try:
            with map_rpc_errors():
                if self._call is None and await self._started() is None:
                    raise StopAsyncIteration  # closed while it waited for a connection
            with map_rpc_errors(self._sent_once):  # known once the call started
                message = await self._call.read()
        except RouterError as exc:
            # Our own aclose() or interrupt() from another task cancelled the call under a pending
            # read: that is the end of the stream, not an error.
            if self._closed and exc.grpc_code is grpc.StatusCode.CANCELLED:
                raise StopAsyncIteration from None
            ended = self._ended_by(exc)
            if self._failed is not None:
                await self._failed(ended)
            if ended is exc:
                raise
            raise ended from exc
        finally:
            self._reading = False
        if message is grpc.aio.EOF:
            self._closed = True
            raise StopAsyncIteration
        response: M = message
        return response

    def _ended_by(self, failed: RouterError) -> RouterError:
        """What ended the call its read failed on (`failed`, but see `RouterRealtime`)."""
        return failed

    async def _started(self) -> Any:
        assert self._late is not None  # no call yet: it starts late
        self._call = await self._late.call()
        self._sent_once = self._late.sent_once
        if self._call is None:
            self._closed = True
        return self._call

    def interrupt(self) -> bool:
        """End the stream from outside the task reading it, without cancelling that task: the call
        is cancelled in gRPC Core, a pending read then ends as the stream's end
        (``StopAsyncIteration``) and frees what it held. True if a read was pending (it wakes by
        itself); False if none was, so a task to stop is elsewhere and may be cancelled."""
        self._closed = True
        if self._call is None and self._late is not None:
            self._late.stop()
        else:
            interrupt_stream(self._call)
        return self._reading

    async def headed(self, wait_s: float) -> None:
        """Wait at most ``wait_s`` seconds for the router's response headers, for a caller about to
        :meth:`interrupt` a stream whose router sends them at once (``Realtime``): an interrupt
        before they come loses what gRPC's core held for them (clients/_cancelling.py)."""
        if self._call is not None:
            await headers_came(self._call, wait_s)

    async def aclose(self) -> None:
        """Cancel the call if it is still running; idempotent."""
        on_its_loop(self._loop, "stream")
        self._closed = True
        _cancel(self._call, self._late)

    def __del__(self) -> None:
        # Dropped unclosed: its grpc.aio call ran on (grpc.aio keeps it), and the router kept
        # the upstream request and its key until the model finished. Cancelled on its loop, as
        # the collection may run in any thread.
        if self._closed or (self._call is not None and self._call.done()):
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: its calls ended with it
            self._loop.call_soon_threadsafe(_cancel, self._call, self._late)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _cancel(call: Any, late: Start | None) -> None:
    """End a stream's call: cancel it, or stop its late start (none was made yet)."""
    if call is None and late is not None:
        late.stop()
    else:
        call.cancel()


class RouterStream(CallStream[router_service_pb2.ChatStreamResponse]):
    """The messages of one ``ChatStream`` call (see :class:`CallStream`)."""


class RouterMediaStream(CallStream[router_service_pb2.MediaStreamResponse]):
    """The messages of one ``MediaStream`` call (see :class:`CallStream`): the route, chunks
    (``MediaChunk``: audio bytes or events), heartbeats, then a summary or an error."""


class RouterRealtime(CallStream[router_service_pb2.RealtimeResponse]):
    """One ``Realtime`` call: :meth:`send` the open, then events (and a close); read the route,
    the upstream's events and the close by iterating (see :class:`CallStream`: leaving the
    ``async with`` block cancels the call, and the router closes the upstream socket)."""

    def __init__(
        self,
        call: Any,
        late: Start | None = None,
        sent_once: bool = False,
        failed: Failed | None = None,
        send_limit: float = math.inf,
    ) -> None:
        """``send_limit``: the client's ``max_message_bytes`` (grpc's send limit)."""
        super().__init__(call, late, sent_once, failed)
        self._send_limit = send_limit
        # A message over the send limit, whose refusal ended the call. (Its write hears of it
        # first: grpc fails the write, which then awaits the call's status, as the read does.)
        self._refused: RouterError | None = None
        self._written = False  # `done_writing` was called: the call goes on, nothing is sent

    async def send(self, message: router_service_pb2.RealtimeRequest) -> None:
        """Send one message; :class:`RouterError` when the call failed or has ended, or the
        message is over the client's ``max_message_bytes`` (which ends the call: its reads
        then raise that refusal too)."""
        on_its_loop(self._loop, "stream")
        if type(message) is not router_service_pb2.RealtimeRequest:
            checked_message("Realtime", message, router_service_pb2.RealtimeRequest, "sends")
        if self._written:  # grpc's refusal was said as the call's end (`_CALL_ENDED`)
            raise RuntimeError("done_writing() was called on this session: it sends no more")
        try:
            with map_rpc_errors():
                if self._call is None and await self._started() is None:
                    raise RouterError(_CALL_ENDED)  # closed while it waited for a connection
            with map_rpc_errors(self._sent_once):
                try:
                    await self._call.write(message)
                except asyncio.InvalidStateError as exc:
                    raise RouterError(_CALL_ENDED) from exc
                except grpc.RpcError as exc:
                    self._refused = self._too_large(message)
                    if self._refused is None:
                        raise
                    raise self._refused from exc
        except RouterError as exc:
            if self._failed is not None:  # a send may be the first to hear no router is reached
                await self._failed(exc)
            raise

    def _too_large(self, message: router_service_pb2.RealtimeRequest) -> RouterError | None:
        """A write's failure as grpc's refusal of a message over the send limit (grpc ends the
        call INTERNAL "Internal error from Core", naming nothing); None for any other."""
        # Imported here: a two-process edge never loads the local channel's modules.
        from clients._local_limits import send_refused

        too_large = send_refused(message.ByteSize(), self._send_limit)
        if too_large is None:
            return None
        code = grpc.StatusCode.RESOURCE_EXHAUSTED  # as grpc refuses a request over it
        return RouterError(ErrorDetails(code, too_large, "MESSAGE_TOO_LARGE", bare=True))

    def _ended_by(self, failed: RouterError) -> RouterError:
        """A message refused as too large, when that ended the call; else `failed`."""
        return self._refused or failed

    async def done_writing(self) -> None:
        """No more messages from this side (a :meth:`send` after it is a RuntimeError)."""
        on_its_loop(self._loop, "stream")
        self._written = True
        try:
            with map_rpc_errors():
                if self._call is None and await self._started() is None:
                    return  # closed before it started: nothing was sent
            with map_rpc_errors(self._sent_once):
                await _half_closed(self._call)
        except RouterError as exc:
            if self._failed is not None:  # the first to hear no router is reached, as a send
                await self._failed(exc)
            raise


async def _half_closed(call: Any) -> None:
    """`call.done_writing()`, a call that failed under it raising its status (an RpcError), as
    its write does. grpc raised its internal ExecuteBatchError, which says nothing (a half-close
    after the call's end, known to grpc, does nothing: so does one it learnt of meanwhile)."""
    try:
        await call.done_writing()
    except grpc.RpcError:
        raise
    except Exception:  # grpc._cython's ExecuteBatchError: the call has ended, or is ending
        await call.code()  # its end, once it has come
        await call.wait_for_connection()  # raises its status, unless it ended OK
