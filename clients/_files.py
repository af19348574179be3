"""The file and batch calls of ``RouterClient`` and ``SyncRouterClient`` (OpenAI's Files and
Batch APIs, kept and run by the router per client; ``chat`` scope, not counted in rpm: a batch's
lines are, as they run), as mixins over each client's one ``_unary``: kept apart so that each
client module stays one screenful."""

from __future__ import annotations

from typing import Any

from clients._base import USE_CLIENT_DEFAULT, Timeout
from clients._metadata import Metadata
from clients.switchboard.v1 import batches_pb2 as pb

__all__ = ["FileCalls", "SyncFileCalls"]


class FileCalls:
    """``RouterClient``'s file and batch calls."""

    async def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    async def upload_file(
        self,
        req: pb.UploadFileRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.UploadFileResponse:
        """Keep a file of the calling client (purpose batch or user_data)."""
        response: pb.UploadFileResponse = await self._unary(
            "router", "UploadFile", req, timeout, metadata
        )
        return response

    async def list_files(
        self,
        req: pb.ListFilesRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.ListFilesResponse:
        """The calling client's files, newest first."""
        response: pb.ListFilesResponse = await self._unary(
            "router", "ListFiles", req, timeout, metadata
        )
        return response

    async def get_file(
        self,
        req: pb.GetFileRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.GetFileResponse:
        """One of the calling client's files; NOT_FOUND when none."""
        response: pb.GetFileResponse = await self._unary(
            "router", "GetFile", req, timeout, metadata
        )
        return response

    async def get_file_content(
        self,
        req: pb.GetFileContentRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.GetFileContentResponse:
        """One of the calling client's files with its content."""
        response: pb.GetFileContentResponse = await self._unary(
            "router", "GetFileContent", req, timeout, metadata
        )
        return response

    async def delete_file(
        self,
        req: pb.DeleteFileRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.DeleteFileResponse:
        """Delete one of the calling client's files; NOT_FOUND when none."""
        response: pb.DeleteFileResponse = await self._unary(
            "router", "DeleteFile", req, timeout, metadata
        )
        return response

    async def create_batch(
        self,
        req: pb.CreateBatchRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CreateBatchResponse:
        """Start a batch over one of the calling client's batch files."""
        response: pb.CreateBatchResponse = await self._unary(
            "router", "CreateBatch", req, timeout, metadata
        )
        return response

    async def get_batch(
        self,
        req: pb.GetBatchRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.GetBatchResponse:
        """One of the calling client's batches; NOT_FOUND when none."""
        response: pb.GetBatchResponse = await self._unary(
            "router", "GetBatch", req, timeout, metadata
        )
        return response

    async def list_batches(
        self,
        req: pb.ListBatchesRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.ListBatchesResponse:
        """The calling client's batches, newest first."""
        response: pb.ListBatchesResponse = await self._unary(
            "router", "ListBatches", req, timeout, metadata
        )
        return response

    async def cancel_batch(
        self,
        req: pb.CancelBatchRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - the gRPC deadline
        metadata: Metadata | None = None,
    ) -> pb.CancelBatchResponse:
        """Cancel one of the calling client's batches, wherever it runs."""
        response: pb.CancelBatchResponse = await self._unary(
            "router", "CancelBatch", req, timeout, metadata
        )
        return response


class SyncFileCalls:
    """``SyncRouterClient``'s file and batch calls (as :class:`FileCalls`')."""

    def _unary(
        self, stub: str, rpc: str, req: Any, deadline: Timeout, metadata: Metadata | None
    ) -> Any:
        raise NotImplementedError

    def upload_file(
        self,
        req: pb.UploadFileRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.UploadFileResponse:
        """Keep a file of the calling client (purpose batch or user_data)."""
        response: pb.UploadFileResponse = self._unary(
            "router", "UploadFile", req, timeout, metadata
        )
        return response

    def list_files(
        self,
        req: pb.ListFilesRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.ListFilesResponse:
        """The calling client's files, newest first."""
        response: pb.ListFilesResponse = self._unary("router", "ListFiles", req, timeout, metadata)
        return response

    def get_file(
        self,
        req: pb.GetFileRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.GetFileResponse:
        """One of the calling client's files; NOT_FOUND when none."""
        response: pb.GetFileResponse = self._unary("router", "GetFile", req, timeout, metadata)
        return response

    def get_file_content(
        self,
        req: pb.GetFileContentRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.GetFileContentResponse:
        """One of the calling client's files with its content."""
        response: pb.GetFileContentResponse = self._unary(
            "router", "GetFileContent", req, timeout, metadata
        )
        return response

    def delete_file(
        self,
        req: pb.DeleteFileRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.DeleteFileResponse:
        """Delete one of the calling client's files; NOT_FOUND when none."""
        response: pb.DeleteFileResponse = self._unary(
            "router", "DeleteFile", req, timeout, metadata
        )
        return response

    def create_batch(
        self,
        req: pb.CreateBatchRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CreateBatchResponse:
        """Start a batch over one of the calling client's batch files."""
        response: pb.CreateBatchResponse = self._unary(
            "router", "CreateBatch", req, timeout, metadata
        )
        return response

    def get_batch(
        self,
        req: pb.GetBatchRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.GetBatchResponse:
        """One of the calling client's batches; NOT_FOUND when none."""
        response: pb.GetBatchResponse = self._unary("router", "GetBatch", req, timeout, metadata)
        return response

    def list_batches(
        self,
        req: pb.ListBatchesRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.ListBatchesResponse:
        """The calling client's batches, newest first."""
        response: pb.ListBatchesResponse = self._unary(
            "router", "ListBatches", req, timeout, metadata
        )
        return response

    def cancel_batch(
        self,
        req: pb.CancelBatchRequest,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        metadata: Metadata | None = None,
    ) -> pb.CancelBatchResponse:
        """Cancel one of the calling client's batches, wherever it runs."""
        response: pb.CancelBatchResponse = self._unary(
            "router", "CancelBatch", req, timeout, metadata
        )
        return response
