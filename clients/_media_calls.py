"""The media call of ``RouterClient`` and ``SyncRouterClient`` (OpenAI's moderations, images,
speech, transcriptions and translations: ``chat`` scope, counted in rpm), as mixins over each
client's one ``_unary``, as ``_conversations``' are."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients._stream import RouterMediaStream
from clients.switchboard.v1 import router_service_pb2 as pb

__all__ = ["MediaCalls", "SyncMediaCalls"]


class MediaCalls:
    """``RouterClient``'s media call."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def media(
        self,
        req: pb.MediaRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.MediaResponse:
        """A moderation, image, speech, transcription or translation (`MediaParams.operation`):
        the upstream's answer as it is (`MediaResult.content_type`, `body`)."""
        response: pb.MediaResponse = await self._unary("router", "Media", req, timeout, metadata)
        return response

    def _streaming(self, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None) -> Any:
        raise NotImplementedError

    def media_stream(
        self,
        req: pb.MediaStreamRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> RouterMediaStream:
        """Speech, a transcription or an image answered as the upstream streams it; use it as
        ``async with client.media_stream(req) as stream:``. Leaving the block cancels the call
        (and the upstream request)."""
        return RouterMediaStream(*self._streaming("MediaStream", req, timeout, metadata))


class SyncMediaCalls:
    """``SyncRouterClient``'s media call (as :class:`MediaCalls`')."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def media(
        self,
        req: pb.MediaRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.MediaResponse:
        """A moderation, image, speech, transcription or translation (`MediaParams.operation`)."""
        response: pb.MediaResponse = self._unary("router", "Media", req, timeout, metadata)
        return response
