"""The background-response calls of ``RouterClient`` and ``SyncRouterClient`` (OpenAI's
``background: true``, run by the router; ``chat`` scope), as mixins over each client's one
``_unary``, as ``_conversations`` does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients._stream import CallStream
from clients.switchboard.v1 import router_service_pb2 as pb

if TYPE_CHECKING:
    from clients._sync_stream import SyncCallStream, SyncStreamStart

__all__ = ["BackgroundCalls", "SyncBackgroundCalls"]


class BackgroundCalls:
    """``RouterClient``'s background-response calls."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def _streaming(self, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None) -> Any:
        raise NotImplementedError

    def resume_response(
        self,
        req: pb.ResumeResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> CallStream[pb.ResumeResponseResponse]:
        """A streamed background response's events after ``req.starting_after``, then the live
        ones until it ends: ``async with client.resume_response(req) as events:``. Leaving the
        block ends the call, not the response."""
        return CallStream(*self._streaming("ResumeResponse", req, timeout, metadata))

    async def start_background_response(
        self,
        req: pb.StartBackgroundResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.StartBackgroundResponseResponse:
        """Start a Responses call in the router's background; answers it queued."""
        response: pb.StartBackgroundResponseResponse = await self._unary(
            "router", "StartBackgroundResponse", req, timeout, metadata
        )
        return response

    async def cancel_response(
        self,
        req: pb.CancelResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CancelResponseResponse:
        """Cancel one of the calling client's background responses; answers it cancelled."""
        response: pb.CancelResponseResponse = await self._unary(
            "router", "CancelResponse", req, timeout, metadata
        )
        return response


class SyncBackgroundCalls:
    """``SyncRouterClient``'s background-response calls (as :class:`BackgroundCalls`')."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    if TYPE_CHECKING:  # SyncRouterClient's (after this mixin in the clients' order)

        def _streaming(
            self, rpc: str, request: Any, deadline: Timeout, metadata: Metadata | None
        ) -> SyncStreamStart: ...

    def resume_response(
        self,
        req: pb.ResumeResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> SyncCallStream[pb.ResumeResponseResponse]:
        """As :meth:`BackgroundCalls.resume_response`: ``with client.resume_response(req) as
        events:``."""
        from clients._sync_stream import SyncCallStream  # only the blocking client's

        return SyncCallStream(*self._streaming("ResumeResponse", req, timeout, metadata))

    def start_background_response(
        self,
        req: pb.StartBackgroundResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.StartBackgroundResponseResponse:
        """Start a Responses call in the router's background; answers it queued."""
        response: pb.StartBackgroundResponseResponse = self._unary(
            "router", "StartBackgroundResponse", req, timeout, metadata
        )
        return response

    def cancel_response(
        self,
        req: pb.CancelResponseRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CancelResponseResponse:
        """Cancel one of the calling client's background responses; answers it cancelled."""
        response: pb.CancelResponseResponse = self._unary(
            "router", "CancelResponse", req, timeout, metadata
        )
        return response
