"""``SyncRouterClient``: :class:`~clients.RouterClient`'s surface over a blocking channel.

For scripts, tests and services without an event loop. Same lifetime (UNOPENED → OPENED → CLOSED),
same errors (:class:`~clients.errors.RouterError`), no retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import grpc

from clients._background import SyncBackgroundCalls
from clients._base import (
    USE_CLIENT_DEFAULT,
    BaseClient,
    Metadata,
    State,
    Timeout,
    map_rpc_errors,
)
from clients._client_keys import SyncClientKeyCalls
from clients._conversations import SyncConversationCalls
from clients._files import SyncFileCalls
from clients._media_calls import SyncMediaCalls
from clients.errors import RouterError
from clients.switchboard.v1 import admin_service_pb2, router_service_pb2

# What a server-streaming call's messages are.
M = TypeVar("M")


class SyncCallStream(Generic[M]):
    """A sync server-streaming call: an iterator and a context manager; :meth:`close` cancels
    it."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._closed = False

    def __iter__(self) -> Iterator[M]:
        return self

    def __next__(self) -> M:
        if self._closed:
            raise StopIteration
        try:
            with map_rpc_errors():
                message: M = next(self._call)
        except RouterError as exc:
            # close() from another thread cancels the call under a blocked next().
            if self._closed and exc.grpc_code is grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise
        except StopIteration:
            self._closed = True
            raise
        return message

    def close(self) -> None:
        """Cancel the call if it is still running; idempotent."""
        self._closed = True
        self._call.cancel()

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


class SyncRouterClient(
    SyncBackgroundCalls,
    SyncClientKeyCalls,
    SyncConversationCalls,
    SyncFileCalls,
    SyncMediaCalls,
    BaseClient,
):
    """The same surface as :class:`RouterClient` over a blocking ``grpc.Channel``."""

    def _make_channel(self) -> Any:
        if self._credentials is None:
            channel = grpc.insecure_channel(self._target, options=self._options)
        else:
            channel = grpc.secure_channel(self._target, self._credentials, options=self._options)
        if self._interceptors:
            return grpc.intercept_channel(channel, *self._interceptors)
        return channel

    def __enter__(self) -> Self:
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
        stays open until :meth:`close` (a blocking channel cannot wait for its calls: closing it
        cancels them). Idle, it lets its connection go after grpc's idle timeout.
        """
        if (replaced := self._reopen_with(credentials)) is not None:
            self._replaced.append(replaced)

    def close(self) -> None:
        """Close the channel, cancelling running calls; idempotent."""
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        retired, self._replaced = self._replaced, []
        for channel in (*retired, self._channel):
            if channel is not None:
                channel.close()

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        """One unary call on the router (``stub="router"``) or admin service."""
        method = getattr(self._stub(stub), rpc)
        with map_rpc_errors():
            return method(req, **self._kwargs(deadline, metadata))

    def chat_stream(
        self,
        req: router_service_pb2.ChatStreamRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncRouterStream:
        """Start a stream; use it as ``with client.chat_stream(req) as stream:``."""
        router = self._stub("router")
        with map_rpc_errors():
            return SyncRouterStream(router.ChatStream(req, **self._kwargs(timeout, metadata)))

    def media_stream(
        self,
        req: router_service_pb2.MediaStreamRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncRouterMediaStream:
        """Start a media stream; use it as ``with client.media_stream(req) as stream:``."""
        router = self._stub("router")
        with map_rpc_errors():
            call = router.MediaStream(req, **self._kwargs(timeout, metadata))
            return SyncRouterMediaStream(call)

    def realtime(
        self,
        requests: Iterator[router_service_pb2.RealtimeRequest],
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncCallStream[router_service_pb2.RealtimeResponse]:
        """A Realtime session over `requests` (the open first): the router's messages."""
        router = self._stub("router")
        with map_rpc_errors():
            return SyncCallStream(router.Realtime(requests, **self._kwargs(timeout, metadata)))

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

    def cancel_client_batch(
        self,
        batch_id: str,
        reason: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.CancelClientBatchResponse:
        """Cancel any client's batch not ended, by id (audited with `reason`)."""
        req = admin_service_pb2.CancelClientBatchRequest(id=batch_id, reason=reason)
        response: admin_service_pb2.CancelClientBatchResponse = self._unary(
            "admin", "CancelClientBatch", req, timeout, metadata
        )
        return response

    def list_jobs(
        self,
        limit: int = 0,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListJobsResponse:
        """The batches not ended (every replica's), and the background responses and Realtime
        sessions of the replica that answers; at most `limit` of each (0: the router's default)."""
        req = admin_service_pb2.ListJobsRequest(limit=limit)
        response: admin_service_pb2.ListJobsResponse = self._unary(
            "admin", "ListJobs", req, timeout, metadata
        )
        return response

    def list_clients(
        self,
        req: admin_service_pb2.ListClientsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListClientsResponse:
        """Each configured client with its limits and what it used (never a key)."""
        req = req or admin_service_pb2.ListClientsRequest()
        response: admin_service_pb2.ListClientsResponse = self._unary(
            "admin", "ListClients", req, timeout, metadata
        )
        return response

    def list_keys(
        self,
        req: admin_service_pb2.ListKeysRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.ListKeysResponse:
        response: admin_service_pb2.ListKeysResponse = self._unary(
            "admin", "ListKeys", req or admin_service_pb2.ListKeysRequest(), timeout, metadata
        )
        return response

    def purge_cache(
        self,
        model: str = "",
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> None:
        """Forget the response cache's answers of `model` ("": of every model)."""
        req = admin_service_pb2.PurgeCacheRequest(model=model)
        self._unary("admin", "PurgeCache", req, timeout, metadata)

    def set_key_enabled(
        self,
        req: admin_service_pb2.SetKeyEnabledRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.SetKeyEnabledResponse:
        response: admin_service_pb2.SetKeyEnabledResponse = self._unary(
            "admin", "SetKeyEnabled", req, timeout, metadata
        )
        return response

    def get_routing_stats(
        self,
        req: admin_service_pb2.GetRoutingStatsRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.GetRoutingStatsResponse:
        response: admin_service_pb2.GetRoutingStatsResponse = self._unary(
            "admin",
            "GetRoutingStats",
            req or admin_service_pb2.GetRoutingStatsRequest(),
            timeout,
            metadata,
        )
        return response

    def get_server_info(
        self,
        req: admin_service_pb2.GetServerInfoRequest | None = None,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> admin_service_pb2.GetServerInfoResponse:
        response: admin_service_pb2.GetServerInfoResponse = self._unary(
            "admin",
            "GetServerInfo",
            req or admin_service_pb2.GetServerInfoRequest(),
            timeout,
            metadata,
        )
        return response
