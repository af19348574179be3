"""The upload calls of ``RouterClient`` and ``SyncRouterClient`` (OpenAI's Uploads API: a file
sent in parts, kept by the router per client as an uploaded file once completed; ``chat`` scope,
not counted in rpm), as mixins over each client's one ``_unary``."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients.switchboard.v1 import uploads_pb2 as pb

__all__ = ["SyncUploadCalls", "UploadCalls"]


class UploadCalls:
    """``RouterClient``'s upload calls."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def create_upload(
        self,
        req: pb.CreateUploadRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CreateUploadResponse:
        """Begin an upload of one file in parts (OpenAI's Uploads API)."""
        response: pb.CreateUploadResponse = await self._unary(
            "router", "CreateUpload", req, timeout, metadata
        )
        return response

    async def add_upload_part(
        self,
        req: pb.AddUploadPartRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.AddUploadPartResponse:
        """Add a part to one of the calling client's pending uploads."""
        response: pb.AddUploadPartResponse = await self._unary(
            "router", "AddUploadPart", req, timeout, metadata
        )
        return response

    async def complete_upload(
        self,
        req: pb.CompleteUploadRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CompleteUploadResponse:
        """Make a pending upload a file of its parts, in the order given."""
        response: pb.CompleteUploadResponse = await self._unary(
            "router", "CompleteUpload", req, timeout, metadata
        )
        return response

    async def cancel_upload(
        self,
        req: pb.CancelUploadRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CancelUploadResponse:
        """Cancel a pending upload: its parts are deleted."""
        response: pb.CancelUploadResponse = await self._unary(
            "router", "CancelUpload", req, timeout, metadata
        )
        return response


class SyncUploadCalls:
    """``SyncRouterClient``'s upload calls."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def create_upload(
        self,
        req: pb.CreateUploadRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CreateUploadResponse:
        """Begin an upload of one file in parts (OpenAI's Uploads API)."""
        response: pb.CreateUploadResponse = self._unary(
            "router", "CreateUpload", req, timeout, metadata
        )
        return response

    def add_upload_part(
        self,
        req: pb.AddUploadPartRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.AddUploadPartResponse:
        """Add a part to one of the calling client's pending uploads."""
        response: pb.AddUploadPartResponse = self._unary(
            "router", "AddUploadPart", req, timeout, metadata
        )
        return response

    def complete_upload(
        self,
        req: pb.CompleteUploadRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CompleteUploadResponse:
        """Make a pending upload a file of its parts, in the order given."""
        response: pb.CompleteUploadResponse = self._unary(
            "router", "CompleteUpload", req, timeout, metadata
        )
        return response

    def cancel_upload(
        self,
        req: pb.CancelUploadRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CancelUploadResponse:
        """Cancel a pending upload: its parts are deleted."""
        response: pb.CancelUploadResponse = self._unary(
            "router", "CancelUpload", req, timeout, metadata
        )
        return response
