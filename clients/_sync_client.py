"""``SyncRouterClient``: :class:`~clients.RouterClient`'s surface over a blocking channel.

For scripts, tests and services without an event loop. Same lifetime (UNOPENED → OPENED → CLOSED),
same errors (:class:`~clients.errors.RouterError`), no retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import grpc

from clients._admin_calls import SyncAdminCalls
from clients._background import SyncBackgroundCalls
from clients._base import (
    LOCALLY_CANCELLED,
    USE_CLIENT_DEFAULT,
    BaseClient,
    State,
    Timeout,
    map_rpc_errors,
)
from clients._client_keys import SyncClientKeyCalls
from clients._conversations import SyncConversationCalls
from clients._files import SyncFileCalls
from clients._media_calls import SyncMediaCalls
from clients._metadata import Metadata
from clients._ready import SyncReadyGate
from clients._sync_channels import ChannelCalls
from clients._sync_stream import (
    SentRequests,
    SyncCallStream,
    SyncRouterMediaStream,
    SyncRouterStream,
    SyncStreamStart,
)
from clients._uploads import SyncUploadCalls
from clients.errors import RouterError
from clients.switchboard.v1 import router_service_pb2


class SyncRouterClient(
    SyncAdminCalls,
    SyncBackgroundCalls,
    SyncClientKeyCalls,
    SyncConversationCalls,
    SyncFileCalls,
    SyncMediaCalls,
    SyncUploadCalls,
    BaseClient,
):
    """The same surface as :class:`RouterClient` over a blocking ``grpc.Channel``."""

    _gate: SyncReadyGate | None = None  # the current channel's, made on open
    _raw_channel: Any = None  # that channel without its interceptors
    _calls: ChannelCalls | None = None  # the current channel's calls, made on open
    # Channels replaced, closed by the last of their calls (`ChannelCalls.retire`) or the client's.
    _retired: tuple[ChannelCalls, ...] = ()

    def _stubs_made(self) -> None:
        """The new channel's calls and gate, then the replaced gate closed (`use_credentials`,
        names that moved): a call it woke finds them in place, and goes on the new channel."""
        replaced, self._gate = self._gate, SyncReadyGate(self._raw_channel, self._ready_wait_s)
        self._calls = ChannelCalls(self._channel, self._router, self._admin)
        if replaced is not None:
            replaced.close(replaced=True)

    def _make_channel(self) -> Any:
        """The channel (its gate and calls: `_stubs_made`), made before the client is OPENED,
        which another thread's call may see at once."""
        target = self._target.looked_up()  # host names of a list: here, on first use
        if self._credentials is None:
            channel = grpc.insecure_channel(target, options=self._options)
        else:
            channel = grpc.secure_channel(target, self._credentials, options=self._options)
        self._raw_channel = channel  # the gate reads its state (interceptors cannot)
        if self._interceptors:
            return grpc.intercept_channel(channel, *self._interceptors)
        return channel

    def __enter__(self) -> Self:
        with self._opening:
            self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def use_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """Make calls from now on with ``credentials`` (a rotated client certificate or CA).

        An open client moves to a new channel; calls under way finish on the old one, which
        closes once they have ended (those still running when the client closes are cancelled).
        """
        with self._opening:  # a close meanwhile closes the replaced channel too
            self._retire(self._calls, self._reopen_with(credentials))

    def _retire(self, calls: ChannelCalls | None, replaced: Any) -> None:
        """`calls`' channel was `replaced` (None: not, the client was not open): it closes
        once its calls have ended, or with the client. Under `_opening`."""
        if replaced is None or calls is None:
            return
        self._retired = (*(kept for kept in self._retired if not kept.closed), calls)
        calls.retire()

    def close(self) -> None:
        """Close the channel, cancelling running calls; idempotent."""
        with self._opening:
            if self._state is State.CLOSED:
                return
            self._state = State.CLOSED
            if self._gate is not None:
                self._gate.close()
            for calls in (*self._retired, self._calls):
                if calls is not None:
                    calls.close()
            self._retired = ()

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        """One unary call on the router (``stub="router"``) or admin service."""
        kwargs, sent_once, calls = self._ready(stub, rpc, req, deadline, metadata)
        try:
            with map_rpc_errors(sent_once, self._was_closed):
                return getattr(calls.router if stub == "router" else calls.admin, rpc)(
                    req, **kwargs
                )
        except RouterError as failed:
            self._found_again(failed)
            raise
        finally:
            calls.end()

    def _found_again(self, failed: RouterError) -> None:
        """After a call that reached no router (`_reached_none`): the names of its addresses
        looked up again, here and at most every `RELOOKUP_S`; when they give other addresses
        now, the client moves to a channel to them (calls under way finish on the old one,
        which closes once they have ended, as `use_credentials`'). Replicas that moved are
        found by the next call."""
        if self._reached_none(failed) and self._target.relooked_up():
            with self._opening:  # a close meanwhile: nothing to move
                self._retire(self._calls, self._reopened())

    def _was_closed(self) -> bool:
        return self._state is State.CLOSED

    def _begun(self) -> ChannelCalls:
        """The channel (and stubs) of a call begun before any close (`_ready` let it through),
        the call counted there until its `end`: one closed since ends CANCELLED, as a call the
        close cancels, not with `_stub`'s refusal of a call made on a closed client (threads
        sharing one: another closed it meanwhile)."""
        while True:
            if self._state is State.CLOSED:
                raise RouterError(LOCALLY_CANCELLED)
            # Not `_stub`, whose own check a close in between would fail; closed meanwhile,
            # the channel refuses the call (`map_rpc_errors`: CANCELLED too). One replaced
            # meanwhile takes no more calls: the current one, made before it was, does.
            calls = self._calls
            assert calls is not None  # made on open, which `_ready` did
            if calls.begin():
                return calls

    def _ready(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> tuple[dict[str, Any], bool, ChannelCalls]:
        """A call's arguments once it may be sent (`SyncReadyGate.before_call`: a call that may
        not be sent twice, made while no connection is up, waits for one), and whether it is
        sent once; TypeError for a `req` that is no message of `rpc`; and the channel it goes
        on (`_begun`: counted from before its wait, so that a channel replaced meanwhile does
        not close under it; the new one once it was replaced), which the caller `end`s."""
        self._stub(stub).check(rpc, req)  # opens the client on first use, or refuses
        kwargs = self._kwargs(deadline, metadata)
        calls = self._begun()
        gate = self._gate
        assert gate is not None  # made with the channel `_stub` opened
        try:
            kwargs["timeout"], sent_once = gate.before_call(stub, rpc, kwargs["timeout"])
            if self._gate is not gate and self._gate is not None:
                # Rotated while it waited: it goes on the new channel, as that one is now; a
                # client closed since ends it CANCELLED, as the gate's own close does.
                sent_once = self._gate.sent_once(stub, rpc)
            if self._calls is not calls:  # the new one counts it before the old lets go
                calls, replaced = self._begun(), calls
                replaced.end()
        except BaseException:
            calls.end()
            raise
        return kwargs, sent_once, calls

    def _streaming(
        self, rpc: str, request: Any, deadline: Timeout, metadata: Metadata | None
    ) -> SyncStreamStart:
        """A streaming call of the router's `rpc`, started, as the streams take it."""
        kwargs, sent_once, calls = self._ready("router", rpc, request, deadline, metadata)
        try:
            with map_rpc_errors(sent_once, self._was_closed):
                call = getattr(calls.router, rpc)(request, **kwargs)
        except BaseException:
            calls.end()
            raise
        return call, sent_once, self._was_closed, self._found_again, calls.end

    def chat_stream(
        self,
        req: router_service_pb2.ChatStreamRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncRouterStream:
        """Start a stream; use it as ``with client.chat_stream(req) as stream:``."""
        return SyncRouterStream(*self._streaming("ChatStream", req, timeout, metadata))

    def media_stream(
        self,
        req: router_service_pb2.MediaStreamRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncRouterMediaStream:
        """Start a media stream; use it as ``with client.media_stream(req) as stream:``."""
        return SyncRouterMediaStream(*self._streaming("MediaStream", req, timeout, metadata))

    def realtime(
        self,
        requests: Iterable[router_service_pb2.RealtimeRequest],
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncCallStream[router_service_pb2.RealtimeResponse]:
        """A Realtime session over `requests` (the open first; an iterator grpc reads in a
        thread of its own, or a list): the router's messages. What `requests` raises (or a
        message that is no RealtimeRequest, a TypeError) ends the session and is raised by
        its reading."""
        sent = SentRequests(requests, "Realtime", router_service_pb2.RealtimeRequest)
        try:
            started = self._streaming("Realtime", sent, timeout, metadata)
        except BaseException:  # grpc's request thread may wait for the call: there is none
            sent.attach(None)
            raise
        sent.attach(started[0])
        return SyncCallStream(*started, requests=sent)

    def chat(
        self,
        req: router_service_pb2.ChatRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.ChatResponse:
        response: router_service_pb2.ChatResponse = self._unary(
            "router", "Chat", req, timeout, metadata
        )
        return response

    def embed(
        self,
        req: router_service_pb2.EmbedRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.EmbedResponse:
        response: router_service_pb2.EmbedResponse = self._unary(
            "router", "Embed", req, timeout, metadata
        )
        return response

    def list_models(
        self,
        req: router_service_pb2.ListModelsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.ListModelsResponse:
        response: router_service_pb2.ListModelsResponse = self._unary(
            "router", "ListModels", req or router_service_pb2.ListModelsRequest(), timeout, metadata
        )
        return response

    def pick_route(
        self,
        req: router_service_pb2.PickRouteRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.PickRouteResponse:
        """A deployment and a leased key for a call the caller makes itself (``route`` scope)."""
        response: router_service_pb2.PickRouteResponse = self._unary(
            "router", "PickRoute", req, timeout, metadata
        )
        return response

    def report_outcome(
        self,
        req: router_service_pb2.ReportOutcomeRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.ReportOutcomeResponse:
        """Return a :meth:`pick_route` lease with the call's outcome."""
        response: router_service_pb2.ReportOutcomeResponse = self._unary(
            "router", "ReportOutcome", req, timeout, metadata
        )
        return response

    def store_response(
        self,
        req: router_service_pb2.StoreResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.StoreResponseResponse:
        """Keep a Responses API response for the calling client (``chat`` scope)."""
        response: router_service_pb2.StoreResponseResponse = self._unary(
            "router", "StoreResponse", req, timeout, metadata
        )
        return response

    def load_responses(
        self,
        req: router_service_pb2.LoadResponsesRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.LoadResponsesResponse:
        """The calling client's stored responses by id; NOT_FOUND names the first missing."""
        response: router_service_pb2.LoadResponsesResponse = self._unary(
            "router", "LoadResponses", req, timeout, metadata
        )
        return response

    def delete_response(
        self,
        req: router_service_pb2.DeleteResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> router_service_pb2.DeleteResponseResponse:
        """Delete one of the calling client's stored responses; NOT_FOUND when it has none."""
        response: router_service_pb2.DeleteResponseResponse = self._unary(
            "router", "DeleteResponse", req, timeout, metadata
        )
        return response
