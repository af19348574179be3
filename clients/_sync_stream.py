"""The blocking client's streams (``SyncRouterClient``'s): a started call's messages, read by
iterating; closing the stream cancels the call."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from clients._base import map_rpc_errors
from clients._stubs import checked_message
from clients.errors import RouterError
from clients.switchboard.v1 import router_service_pb2

__all__ = [
    "SentRequests",
    "SyncCallStream",
    "SyncRouterMediaStream",
    "SyncRouterStream",
    "SyncStreamStart",
]

# What a server-streaming call's messages are.
M = TypeVar("M")
# A stream's call as the blocking client makes it: grpc's call, whether it is sent once
# (`ReadyGate.sent_once`), whether the client was closed (which cancels the call:
# `map_rpc_errors`), what is told the error a read raises (the client's `_found_again`), and
# what is told the call's end (`ChannelCalls.end`: a replaced channel closes after its last).
SyncStreamStart = tuple[
    Any, bool, Callable[[], bool], Callable[[RouterError], None] | None, Callable[[], None] | None
]


class SentRequests:
    """A session's messages from the caller's iterable, as grpc reads them in a thread of its
    own: what fails there (the caller's iterator raised, or gave what is no `expected`) is kept
    for the stream's reader to raise. grpc only logged it and ended the call UNKNOWN
    "Exception iterating requests!" (or INTERNAL "Exception serializing request!"). So that
    grpc never sees it (it logged it, traceback and all, in the caller's logs), the failure
    cancels the call here and ends the messages: the reader raises it, said once."""

    def __init__(self, requests: Iterable[Any], rpc: str, expected: type) -> None:
        self._requests = iter(requests)  # a list too: grpc calls `next` on what it is given
        self._rpc = rpc
        self._expected = expected
        self.failed: Exception | None = None
        # The call these are sent on: grpc reads the first message as it starts the call,
        # before the call is handed back to be `attach`ed (None: it never started).
        self._call: Any = None
        self._attached = threading.Event()

    def attach(self, call: Any) -> None:
        """The call started with these messages (None: starting it failed)."""
        self._call = call
        self._attached.set()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        try:
            message = next(self._requests)
            checked_message(self._rpc, message, self._expected, "sends")
        except StopIteration:
            raise
        except Exception as exc:
            self.failed = exc  # before the cancel wakes the reader
            self._attached.wait()  # set at once after the call is made, or its failure
            if self._call is not None:
                self._call.cancel()  # the call's end is CANCELLED: nothing more is sent
            raise StopIteration from None
        return message


class SyncCallStream(Generic[M]):
    """A sync server-streaming call: an iterator and a context manager; :meth:`close` cancels
    it."""

    _closed = True  # until made: `__del__` of one whose making failed has nothing to end

    def __init__(
        self,
        call: Any,
        sent_once: bool = False,
        client_closed: Callable[[], bool] | None = None,
        failed: Callable[[RouterError], None] | None = None,
        ended: Callable[[], None] | None = None,
        *,
        requests: SentRequests | None = None,
    ) -> None:
        """``sent_once``, ``client_closed``, ``failed``, ``ended``: as `SyncStreamStart`
        says; ``requests``: a bidirectional call's, whose failure, which ended the call, its
        reader raises. A stream dropped unclosed is closed when it is collected (`__del__`)."""
        self._call = call
        self._sent_once = sent_once
        self._client_closed = client_closed
        self._failed = failed
        self._ended = [] if ended is None else [ended]  # popped once: `list.pop` is atomic
        self._requests = requests
        self._closed = False

    def __iter__(self) -> Iterator[M]:
        return self

    def __next__(self) -> M:
        if self._closed:
            raise StopIteration
        try:
            with map_rpc_errors(self._sent_once, self._client_closed):
                message: M = next(self._call)
        except RouterError as exc:
            self._end()
            # close() from another thread cancels the call under a blocked next().
            if self._closed and exc.grpc_code is grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            if self._requests is not None and self._requests.failed is not None:
                raise self._requests.failed from None  # the caller's own, not grpc's UNKNOWN
            if self._failed is not None:
                self._failed(exc)
            raise
        except StopIteration:
            self._closed = True
            self._end()
            raise
        return message

    def close(self) -> None:
        """Cancel the call if it is still running; idempotent."""
        self._closed = True
        self._call.cancel()
        self._end()

    def __del__(self) -> None:
        # Dropped unclosed (a `break` out of its loop): its call cancelled (as grpc's collection
        # of it does) and its end told, so that a channel it kept open once the client moved to
        # another (`ChannelCalls.retire`) closes now, not with the client: a long-lived service
        # kept one channel per move open. Told in a thread of its own: the collector may run
        # in any thread, one holding the grpc locks that closing a channel takes among them.
        if self._closed:
            return
        self._closed = True
        self._call.cancel()
        # IndexError: ended already (a failed read tells it); RuntimeError: the interpreter
        # is exiting, which starts no thread (and closes every channel).
        with contextlib.suppress(IndexError, RuntimeError):
            end = self._ended.pop()
            threading.Thread(target=end, name="switchboard-dropped-stream", daemon=True).start()

    def _end(self) -> None:
        """Tell the call's end, once (a reader and a closing thread may both see it)."""
        try:
            ended = self._ended.pop()
        except IndexError:
            return
        ended()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncRouterStream(SyncCallStream[router_service_pb2.ChatStreamResponse]):
    """The sync ``ChatStream``."""


class SyncRouterMediaStream(SyncCallStream[router_service_pb2.MediaStreamResponse]):
    """The sync ``MediaStream`` (as :class:`~clients.RouterMediaStream`'s messages)."""
