"""``RouterClient``: the async caller of the router, shared by the edge and internal services.

A client owns one channel (several router replicas behind it, balanced round robin) with an
explicit lifetime: UNOPENED → OPENED (on ``async with`` or the first call) → CLOSED, never back.
It does not retry: the router retries across keys and deployments, and a second layer of retries
would multiply upstream load. Every gRPC error becomes :class:`~clients.errors.RouterError`.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import grpc

from clients._admin_calls import AdminCalls
from clients._background import BackgroundCalls
from clients._base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    USE_CLIENT_DEFAULT,
    BaseClient,
    State,
    Timeout,
    map_rpc_errors,
    resolve_timeout,
)
from clients._cancelling import retire_channel, unary_result
from clients._client_keys import ClientKeyCalls
from clients._conversations import ConversationCalls
from clients._files import FileCalls
from clients._limits import READY_WAIT_S
from clients._loops import ROTATE_ELSEWHERE, bound_loop, on_its_loop, running_loop
from clients._media_calls import MediaCalls
from clients._metadata import Metadata, call_metadata
from clients._observer import CallObserver
from clients._ready import FirstStart, LateStart, ReadyGate
from clients._router_calls import RouterCalls
from clients._stream import RouterRealtime, RouterStream, SentOnce, StreamStart, serialize_once
from clients._stubs import check_request
from clients._targets import RouterTarget
from clients._uploads import UploadCalls
from clients.errors import RouterError
from clients.switchboard.v1 import router_service_pb2

if TYPE_CHECKING:  # the in-process channel (`switchboard serve`) is imported by its user
    from clients._local import LocalChannel

_SERVICES = {"router": "/switchboard.v1.RouterService/", "admin": "/switchboard.v1.AdminService/"}
_CHAT_STREAM = _SERVICES["router"] + "ChatStream"
_ROUTER_SERVICE = router_service_pb2.DESCRIPTOR.services_by_name["RouterService"]
# How long a replaced channel's calls may run on before they are cancelled (`_retire`).
_DRAIN_S = 3600.0


class RouterClient(
    RouterCalls,
    AdminCalls,
    BackgroundCalls,
    ClientKeyCalls,
    ConversationCalls,
    FileCalls,
    MediaCalls,
    UploadCalls,
    BaseClient,
):
    """Async client of the router's ``RouterService`` and ``AdminService``.

    Use ``async with RouterClient(...) as client:`` (or call :meth:`aclose`). Each method takes
    a ``timeout`` in seconds (the gRPC deadline; ``None`` or ``math.inf`` for none; left out,
    the client's ``default_timeout``) and extra ``metadata``, sent with ``authorization: Bearer
    <api_key>``.
    """

    def __init__(
        self,
        target: str | Sequence[str] | RouterTarget,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        api_key: str | None = None,
        default_timeout: float | None = None,
        options: Sequence[tuple[str, Any]] = (),
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        interceptors: Sequence[Any] = (),
        observer: CallObserver | None = None,
        channel: LocalChannel | None = None,
        ready_wait_s: float = READY_WAIT_S,
    ) -> None:
        """``observer`` sees every call (tracing: ``router_service.telemetry.client_observer``);
        ``channel``: a :class:`~clients.LocalChannel` to a router in this process, used instead
        of a channel to ``target`` (``switchboard serve``; ``target`` then only names it); the
        other options are :class:`BaseClient`'s."""
        if channel is not None and (credentials is not None or interceptors):
            raise ValueError("an in-process channel takes no credentials nor interceptors")
        super().__init__(
            target,
            credentials=credentials,
            api_key=api_key,
            default_timeout=default_timeout,
            options=options,
            max_message_bytes=max_message_bytes,
            interceptors=interceptors,
            ready_wait_s=ready_wait_s,
        )
        self._observer = observer
        self._local = channel
        self._chat_stream: Any = None  # ChatStream through `SentOnce`, made on open
        # The calls on the current channel (`use_credentials` lets them finish on it) and the
        # replaced channels' closing tasks. grpc.aio tracks calls too, but keeps them private.
        self._calls: weakref.WeakSet[Any] = weakref.WeakSet()
        self._retired: set[asyncio.Task[None]] = set()
        self._gate: ReadyGate | None = None  # the current channel's, made on open
        self._loop: asyncio.AbstractEventLoop | None = None  # the one its channel serves

    def _open(self) -> None:
        super()._open()
        self._loop = running_loop()  # the one its channel serves (outside any: the first used)
        if self._gate is not None:
            self._gate.close(replaced=True)  # `use_credentials`
        self._gate = ReadyGate(self._channel, self._ready_wait_s)
        # Interceptors see the request object: with any, ChatStream keeps the stub's own.
        if not self._interceptors:
            self._chat_stream = self._channel.unary_stream(
                _CHAT_STREAM,
                request_serializer=serialize_once,
                response_deserializer=router_service_pb2.ChatStreamResponse.FromString,
                _registered_method=True,  # as the generated stub: registered once, not per call
            )

    def _stub(self, service: str) -> Any:
        """`BaseClient._stub`, refused on an event loop other than the one it was opened on
        (`bound_loop`): its channel serves only that one."""
        if self._state is State.OPENED and running_loop() is self._loop:  # ~0.35 µs a call
            return self._router if service == "router" else self._admin
        stub = super()._stub(service)
        self._loop = bound_loop(self._loop)
        return stub

    def _make_channel(self) -> Any:
        if self._local is not None:
            self._local.use_options(self._options)  # its answer limit is the wire channel's
            return self._local
        # grpc.aio channels bind to the running loop, so they are made on open, not in __init__.
        interceptors = self._interceptors or None
        target = self._target.looked_up()  # names: looked up by `_looked_up`, off the loop
        if self._credentials is None:
            return grpc.aio.insecure_channel(
                target, options=self._options, interceptors=interceptors
            )
        return grpc.aio.secure_channel(
            target, self._credentials, options=self._options, interceptors=interceptors
        )

    async def __aenter__(self) -> Self:
        await self._looked_up()
        self._open()
        return self

    async def _looked_up(self) -> None:
        """Before the client opens: the host names of a list looked up in a thread, never on
        its event loop. Every first use comes here: `async with`, a unary call, and a stream's
        first read or write (`FirstStart`)."""
        if self._target.target is None and self._local is None:
            await self._target.look_up()

    async def _found_again(self, failed: RouterError) -> None:
        """After a call that reached no router (`_reached_none`): the names of its addresses
        looked up again, in a thread and at most every `RELOOKUP_S`; when they give other
        addresses now, the client moves to a channel to them, and the calls on the old one
        finish there (`_retire`). Replicas that moved are found by the next call."""
        if self._local is not None or not self._reached_none(failed) or not self._target.due():
            return
        if await asyncio.to_thread(self._target.relooked_up) and self._state is State.OPENED:
            self._retire(self._reopened(), _DRAIN_S)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def use_credentials(
        self, credentials: grpc.ChannelCredentials, *, drain_s: float = _DRAIN_S
    ) -> None:
        """Make calls from now on with ``credentials`` (a rotated client certificate or CA).

        An open client moves to a new channel; calls under way finish on the old one, which
        closes once they have ended (those still running after ``drain_s`` seconds, or when
        :meth:`aclose`'s grace is over, are cancelled).
        """
        if self._local is not None:
            raise RuntimeError("an in-process client has no credentials to rotate")
        if self._state is State.OPENED:  # its calls, and the old channel, serve only its loop
            if running_loop() is None:  # before anything changes: else half-rotated
                raise RuntimeError(ROTATE_ELSEWHERE)
            self._loop = bound_loop(self._loop)
        self._retire(self._reopen_with(credentials), drain_s)

    def _retire(self, replaced: Any, drain_s: float) -> None:
        """Close `replaced` (the channel before a reopen; None: there was none) once the calls
        on it have ended, cancelling those still running after `drain_s` seconds."""
        if replaced is None:
            return
        calls, self._calls = self._calls, weakref.WeakSet()
        retiring = asyncio.get_running_loop().create_task(
            retire_channel(replaced, calls, drain_s), name="switchboard-retired-channel"
        )
        self._retired.add(retiring)
        retiring.add_done_callback(self._retired.discard)

    async def aclose(self, grace: float | None = None) -> None:
        """Close the channel (cancelling running calls after ``grace`` seconds); idempotent."""
        if self._state is State.CLOSED:
            return
        if self._loop is not None:  # its channel closes on its loop
            on_its_loop(self._loop, "RouterClient")
        self._state = State.CLOSED
        if self._gate is not None:
            self._gate.close()
        current = () if self._channel is None else (self._channel.close(grace),)
        await asyncio.gather(self._end_retired(grace), *current)  # one grace for all channels

    async def _end_retired(self, grace: float | None) -> None:
        if not (retired := list(self._retired)):
            return
        if grace:
            await asyncio.wait(retired, timeout=grace)
        for retiring in retired:
            retiring.cancel()  # it cancels what still runs there and closes the channel
        await asyncio.wait(retired)

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        """One unary call on the router (``stub="router"``) or admin service."""
        if self._target.target is None:  # first use: host names of a list
            await self._looked_up()
        service = self._stub(stub)
        service.check(rpc, req)
        method = getattr(service, rpc)
        kwargs = self._kwargs(deadline, metadata)
        gate = self._gate
        assert gate is not None  # made with the channel `_stub` opened
        kwargs["timeout"] = await gate.timeout_left(stub, rpc, kwargs["timeout"])
        if gate is not self._gate:  # its channel was replaced while it waited: the new one's
            gate = self._current_gate()
            gate.check_open()  # and the client closed since
            method = getattr(self._stub(stub), rpc)
        try:
            with map_rpc_errors(gate.sent_once(stub, rpc)):
                # Not `await call`: a caller cancelled in that await would leak the call's
                # native operations (clients/_cancelling.py).
                call = self._started(method, f"{_SERVICES[stub]}{rpc}", req, kwargs)
                return await unary_result(call)
        except RouterError as failed:
            await self._found_again(failed)
            raise

    def _started(self, method: Any, name: str, req: Any, kwargs: dict[str, Any]) -> Any:
        """The call, started and shown to the observer."""
        if self._observer is None:
            call = method(req, **kwargs)
            self._calls.add(call)
            return call
        observed = self._observer.start(name, kwargs["metadata"])
        kwargs["metadata"] = observed.metadata
        try:
            call = method(req, **kwargs)
        except BaseException as exc:
            observed.fail(exc)
            raise
        observed.attach(call)
        self._calls.add(call)
        return call

    def chat_stream(
        self,
        req: router_service_pb2.ChatStreamRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> RouterStream:
        """Start a stream; use it as ``async with client.chat_stream(req) as stream:``."""
        return RouterStream(*self._streaming("ChatStream", req, timeout, metadata))

    def _current_gate(self) -> ReadyGate:
        assert self._gate is not None  # made with the channel, on open
        return self._gate

    def _streaming(
        self, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> StreamStart:
        """A streaming call of the router's `rpc`, as a stream takes it (`CallStream`): started
        now when `ReadyGate.sends_at_once`, else at the stream's first read or write, once the
        channel is READY (a call that may not be sent twice, made while no connection is up)."""
        if self._state is State.UNOPENED and self._target.target is None and not self._local:
            return self._first_start(rpc, req, deadline, metadata)
        # Opens the client on first use (making `_chat_stream`), or refuses.
        self._stub("router").check(rpc, req)
        kwargs = self._kwargs(deadline, metadata)
        assert self._gate is not None  # made with the channel `_stub` opened
        name = _SERVICES["router"] + rpc

        # With interceptors, ChatStream is the stub's own: they see the request object.
        once = rpc == "ChatStream" and self._chat_stream is not None
        request = SentOnce(req) if once else req  # what a late start holds: not the prompt

        def started(left: float | None) -> Any:
            kwargs["timeout"] = left
            # The current channel's (a late start's may have been replaced while it waited).
            method = self._chat_stream if once else getattr(self._stub("router"), rpc)
            return self._started(method, name, request, kwargs)

        if not self._gate.sends_at_once("router", rpc):
            late = LateStart(self._current_gate, kwargs["timeout"], started)
            return None, late, False, self._found_again
        sent_once = self._gate.sent_once("router", rpc)  # READY, or a read: it starts at once
        with map_rpc_errors(sent_once):
            return started(kwargs["timeout"]), None, sent_once, self._found_again

    def _first_start(
        self, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> StreamStart:
        """A stream that is the client's first call, its router names not looked up yet: it
        starts at its first read or write, once they are (`FirstStart`: in a thread). What the
        opened client refuses at once (a request of another type, metadata gRPC cannot send)
        is refused at once here too."""
        check_request(_ROUTER_SERVICE, rpc, req)
        call_metadata(self._api_key, metadata)
        timeout = resolve_timeout(deadline, self._default_timeout)

        def start(left: float | None) -> StreamStart:
            return self._streaming(rpc, req, left, metadata)

        return None, FirstStart(self._looked_up, start, timeout), False, self._found_again

    def realtime(
        self, *, timeout: Timeout = USE_CLIENT_DEFAULT, metadata: Metadata | None = None
    ) -> RouterRealtime:
        """Start a Realtime session (its first message: ``RealtimeRequest(open=...)``); use it
        as ``async with client.realtime() as session:``."""
        send_limit = dict(self._options).get("grpc.max_send_message_length", -1)
        started = self._streaming("Realtime", None, timeout, metadata)
        return RouterRealtime(*started, send_limit=math.inf if send_limit < 0 else send_limit)
