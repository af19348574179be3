"""``LocalChannel``: a channel to a router in the same process (``switchboard serve``).

The edge's calls go to the router's handlers without a socket: no HTTP/2 framing, no grpc
thread hand-offs on either side, no second interpreter (benchmarks/README.md, "One process").
It implements the part of ``grpc.aio.Channel`` the generated stubs and ``RouterClient`` use
(``unary_unary``, ``unary_stream``, ``stream_stream``, ``close``, ``channel_ready``,
``get_state``), as httpx's ``ASGITransport`` stands in for a socket: what the router decides and
what its caller sees stay the same.

The server side is the router's (``LocalHandlers``: its handlers behind the same interceptors as
its port: authentication, limits, stream slots, tracing). Each call runs its handler in a task of
its own with a context of its own (`_local_call.py`), and ends as grpc.aio ends it: the same
codes, details and trailing metadata (rich status included), deadlines and cancellation both
ways.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc

from clients._limits import MAX_METADATA_BYTES
from clients._local_call import LocalCall, UnaryCall
from clients._local_stream import StreamingCall

__all__ = ["LocalChannel", "LocalHandlers"]

Serializer = Callable[[Any], bytes] | None
Deserializer = Callable[[bytes], Any] | None
# How early the loop may run a timer (uvloop's are whole milliseconds): a call whose expiry is
# this close is due. A call's own timer, which this replaces, expired it as early.
_TIMER_SLACK_S = 0.001
# grpc's receive limit when a channel's options set none (`grpc.max_receive_message_length`).
_GRPC_RECEIVE_LIMIT = 4 * 1024 * 1024
_METADATA = MAX_METADATA_BYTES  # our channels' metadata limit, as `channel_options` sets it


class LocalHandlers(Protocol):
    """What a server gives a `LocalChannel` (the router's: `RouterServer.in_process`)."""

    @property
    def serving(self) -> bool:
        """False once the server stops taking calls: a new call is UNAVAILABLE."""

    @property
    def max_request_bytes(self) -> int:
        """The largest request message it takes (grpc's max_receive_message_length)."""

    def find(
        self, method: str, metadata: tuple[tuple[str, Any], ...]
    ) -> Awaitable[grpc.RpcMethodHandler | None]:
        """The handler of `method` after the server's interceptors, or None (UNIMPLEMENTED);
        awaited in the call's own task, where its handler runs next."""


class LocalChannel:
    """A ``grpc.aio.Channel`` stand-in that calls `handlers` in this process; ``close`` cancels
    the calls still running (after ``grace`` seconds)."""

    def __init__(self, handlers: LocalHandlers) -> None:
        self._handlers = handlers
        self._calls: set[LocalCall] = set()
        self._closed = False
        # One timer for every call's deadline, at the earliest still to come. A call that ends
        # leaves it armed: a timer per call (armed, then cancelled) cost ~4.5 µs of each call,
        # and most calls end long before their deadline.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        # The largest answer, request and trailers of a call (`use_options`).
        self._limits: tuple[float, float, float] = (_GRPC_RECEIVE_LIMIT, math.inf, _METADATA)

    def use_options(self, options: Sequence[tuple[str, Any]]) -> None:
        """The options a grpc channel to the router would be made with (`RouterClient` gives
        its own: `clients.channel_options`). Of them, in-process, only the message limits
        apply (-1: none), as on the wire: an answer over `grpc.max_receive_message_length`
        ends its call RESOURCE_EXHAUSTED, a unary one's or any message of a stream's (those
        before it are read); unset, it is grpc's default, 4 MiB. A request (or a message
        written to a Realtime call) over `grpc.max_send_message_length` ends its call
        RESOURCE_EXHAUSTED before the router sees it; unset, none. An answer whose trailers
        are over `grpc.absolute_max_metadata_size` (else `grpc.max_metadata_size`; unset:
        `MAX_METADATA_BYTES`) ends RESOURCE_EXHAUSTED, without them."""
        given = dict(options)
        limit = given.get("grpc.max_receive_message_length", _GRPC_RECEIVE_LIMIT)
        sent = given.get("grpc.max_send_message_length", -1)
        # A caller's own metadata limit is both grpc's soft and hard one (`channel_options`).
        trailers = given.get("grpc.absolute_max_metadata_size")
        trailers = given.get("grpc.max_metadata_size", _METADATA) if trailers is None else trailers
        self._limits = (
            math.inf if limit < 0 else int(limit),
            math.inf if sent < 0 else int(sent),
            int(trailers),
        )

    def unary_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        **_options: Any,
    ) -> _Multicallable:
        return _Multicallable(self, method, request_serializer, response_deserializer, "unary")

    def unary_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        **_options: Any,
    ) -> _Multicallable:
        return _Multicallable(self, method, request_serializer, response_deserializer, "stream")

    def stream_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        **_options: Any,
    ) -> _Multicallable:
        return _Multicallable(self, method, request_serializer, response_deserializer, "bidi")

    def stream_unary(self, method: str, *_args: Any, **_options: Any) -> Any:
        """No RouterService or AdminService method streams requests into one answer."""
        raise NotImplementedError(f"{method}: client-streaming calls are not served in-process")

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        if self._closed:
            return grpc.ChannelConnectivity.SHUTDOWN
        return grpc.ChannelConnectivity.READY

    async def channel_ready(self) -> None:
        """Ready at once: there is no connection to make."""

    async def close(self, grace: float | None = None) -> None:
        """Take no more calls; cancel those still running after `grace` seconds; idempotent."""
        self._closed = True
        running = [call for call in self._calls if not call.done()]
        if grace and running:
            await asyncio.wait(
                [asyncio.ensure_future(call.ended()) for call in running], timeout=grace
            )
        for call in running:
            call.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf

    async def __aenter__(self) -> LocalChannel:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _start(self, call: LocalCall) -> LocalCall:
        if self._closed:
            raise RuntimeError("Cannot invoke RPC: Channel closed!")  # grpc.aio's UsageError text
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)
        call.start(self._handlers, self._limits)
        if call.expiry is not None and call.expiry < self._timer_at and not call.handled():
            self._arm(call.expiry)
        return call

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        """End the calls whose deadline passed (`LocalCall.expire`); wait for the next one."""
        self._timer, self._timer_at = None, math.inf
        due = asyncio.get_running_loop().time() + _TIMER_SLACK_S
        later = math.inf
        for call in list(self._calls):
            if call.expiry is None or call.handled():
                continue
            if call.expiry <= due:
                call.expire()
            else:
                later = min(later, call.expiry)
        if later < math.inf:
            self._arm(later)


class _Multicallable:
    """One method of a `LocalChannel` (what `channel.unary_unary(...)` returns)."""

    __slots__ = ("_channel", "_deserialize", "_kind", "_method", "_serialize")

    def __init__(
        self,
        channel: LocalChannel,
        method: str,
        serialize: Serializer,
        deserialize: Deserializer,
        kind: str,
    ) -> None:
        self._channel = channel
        self._method = method
        self._serialize = serialize
        self._deserialize = deserialize
        self._kind = kind

    def __call__(
        self,
        request: Any = None,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, Any]] | None = None,
        **_options: Any,
    ) -> Any:  # a UnaryCall or a StreamingCall: grpc.aio's call types are not ours to name
        """Start the call: the request is serialized here, as grpc.aio sends it (a handler
        gets its own message, and a request over the router's limit fails as on the wire)."""
        md = tuple(metadata or ())
        if self._kind == "bidi":
            call: LocalCall = StreamingCall(
                self._method, md, timeout, self._serialize, self._deserialize, requests=True
            )
        else:
            data = request if self._serialize is None else self._serialize(request)
            cls = UnaryCall if self._kind == "unary" else StreamingCall
            call = cls(self._method, md, timeout, self._serialize, self._deserialize, payload=data)
        return self._channel._start(call)
