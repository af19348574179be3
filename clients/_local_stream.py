"""An in-process call the router answers with a stream (`_local_call.py`'s `LocalCall`): its
answers, and a bidirectional call's requests, cross through mailboxes of a few messages each."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc

from clients._local_call import END, LocalCall
from clients._local_context import LocalContext
from clients._local_limits import answer_refused
from clients._mailbox import Mailbox

__all__ = ["StreamingCall"]

# Messages either side may write ahead of its reader (what HTTP/2's window is on the wire): a
# reader that stops reading holds the writer at its next message (a handler's answers, a
# Realtime caller's events).
_AHEAD = 8


class StreamingCall(LocalCall):
    """A call the router answers with a stream: ``read()`` / ``async for``; with `requests`, a
    bidirectional one (Realtime) the caller also ``write``s to."""

    _READ_TO_END = True

    def __init__(self, *args: Any, payload: Any = None, requests: bool = False) -> None:
        super().__init__(*args)
        self._payload = payload
        self._answers = Mailbox(_AHEAD)
        self._requests = Mailbox(_AHEAD) if requests else None
        self._half_closed = False
        self._serialize_answer: Callable[[Any], bytes] | None = None

    async def _handle(self, handler: grpc.RpcMethodHandler, context: LocalContext) -> None:
        self._serialize_answer = handler.response_serializer
        if self._requests is not None:
            answers = handler.stream_stream(self._incoming(handler.request_deserializer), context)
        else:
            answers = handler.unary_stream(self._request(handler), context)
        if inspect.iscoroutine(answers):  # its messages written (`context.write`), as grpc takes
            await answers
            return
        async with aclosing(answers) as messages:
            async for message in messages:
                await self.answer(message)
                del message  # not held while the handler waits for its next

    async def answer(self, message: Any) -> None:
        """One of the handler's messages to its caller (a yielded one, or `context.write`'s):
        it waits while the caller is `_AHEAD` messages behind, as grpc's send waits for the
        window."""
        serialize = self._serialize_answer
        await self._answers.put(message if serialize is None else serialize(message))

    async def _incoming(self, parse: Callable[[bytes], Any] | None) -> AsyncIterator[Any]:
        assert self._requests is not None
        while (data := await self._requests.get()) is not END:
            yield data if parse is None else parse(data)

    def _ending(self, abrupt: bool) -> None:
        if abrupt:  # the caller left or its deadline passed: what was not read is dropped
            self._answers.clear()
        self._answers.put_nowait(END)
        if self._requests is not None:
            self._requests.clear()  # the handler reads no more: a write waiting for it ends

    async def read(self) -> Any:
        if self._locally_cancelled:
            raise asyncio.CancelledError()
        try:
            data = await self._answers.get()
        except asyncio.CancelledError:
            self.cancel()  # as grpc.aio: a cancelled read cancels the call
            raise
        if data is END:
            self._answers.put_nowait(END)  # every later read sees the end too
            self._complete()
            self._raise_for_status()
            return grpc.aio.EOF
        refused = answer_refused(data, self._receive_limit)
        if refused is not None:  # the caller's side ends the call there, the handler's with it
            self._end_by_caller(grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
            self._raise_for_status()
        if self._final is not None and self._all_read():
            self._complete()  # its last message: done now, as the wire's trailers come then
        return data if self._deserialize is None else self._deserialize(data)

    def _all_read(self) -> bool:
        return len(self._answers) == 1  # its end, put after its last message

    async def _read_all(self) -> AsyncIterator[Any]:
        while (message := await self.read()) is not grpc.aio.EOF:
            yield message

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._read_all()

    async def write(self, message: Any) -> None:
        if self._requests is None:
            raise grpc.aio.UsageError("a unary-stream call takes no messages after its request")
        if self.handled():  # its handler is over, reading no more (as grpc.aio once done)
            raise asyncio.InvalidStateError("RPC already finished.")
        if self._half_closed:
            raise asyncio.InvalidStateError('RPC is half closed after calling "done_writing".')
        data = message if self._serialize is None else self._serialize(message)
        if self._too_large(len(data)):
            self._raise_for_status()
        try:
            await self._requests.put(data)  # waits while the handler is `_AHEAD` behind
        except asyncio.CancelledError:
            self.cancel()  # as grpc.aio: a cancelled write cancels the call
            raise

    async def done_writing(self) -> None:
        if self._requests is not None and not self.done() and not self._half_closed:
            self._half_closed = True
            self._requests.put_nowait(END)
