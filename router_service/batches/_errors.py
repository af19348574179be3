"""The errors of files and batches: branches of the router's one error tree
(`router_service/errors.py`), each with its gRPC and HTTP status."""

from __future__ import annotations

import grpc

from router_service.errors import ClientRateLimitedError, SwitchboardError

__all__ = [
    "BatchNotCancellableError",
    "BatchNotFoundError",
    "FileQuotaError",
    "FileTooLargeError",
    "StoredFileNotFoundError",
    "UploadLimitError",
    "UploadNotFoundError",
    "UploadNotPendingError",
]


class StoredFileNotFoundError(SwitchboardError):
    """A file that is unknown, expired, deleted or another client's: one error for all, as for
    stored responses."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    reason = "FILE_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, file_id: str, *, param: str) -> None:
        super().__init__(f"No such File object: {file_id}", param=param, code="file_not_found")


class BatchNotFoundError(SwitchboardError):
    """A batch that is unknown, expired or another client's (one error for all)."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    reason = "BATCH_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"No batch found with id '{batch_id}'.", param="id", code="not_found")


class FileTooLargeError(SwitchboardError):
    """A file over `files.max_file_bytes`: waiting does not help (HTTP 413)."""

    grpc_code = grpc.StatusCode.OUT_OF_RANGE
    http_status = 413
    reason = "FILE_TOO_LARGE"
    openai_type = "invalid_request_error"


class FileQuotaError(ClientRateLimitedError):
    """A client uploaded its `files.client_bytes` (or `files.max_files`) this period: RetryInfo
    says when the period ends."""

    reason = "FILE_QUOTA_EXCEEDED"
    openai_type = "insufficient_quota"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.code = "file_quota_exceeded"


class BatchWaitLimitError(ClientRateLimitedError):
    """A client has `batches.max_waiting_per_client` batches waiting for a slot on this replica
    already: RetryInfo says to try again soon."""

    reason = "BATCH_WAIT_LIMIT"


class BatchNotCancellableError(SwitchboardError):
    """A batch that ended, or began to end, already: HTTP 409 as OpenAI answers it (the SDK's
    ConflictError), "Cannot cancel a batch with status 'completed'."."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409
    reason = "BATCH_NOT_CANCELLABLE"
    openai_type = "invalid_request_error"


class UploadNotFoundError(SwitchboardError):
    """An upload (OpenAI's Uploads API) that is unknown, long expired or another client's."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404
    reason = "UPLOAD_NOT_FOUND"
    openai_type = "invalid_request_error"

    def __init__(self, upload_id: str) -> None:
        super().__init__(
            f"No such Upload object: {upload_id}", param="upload_id", code="upload_not_found"
        )


class UploadNotPendingError(SwitchboardError):
    """A part, a completion or a cancel of an upload that completed, was cancelled or expired
    (HTTP 400, as OpenAI answers it)."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 400
    reason = "UPLOAD_NOT_PENDING"
    openai_type = "invalid_request_error"

    def __init__(self, upload_id: str, status: str, what: str) -> None:
        super().__init__(
            f"Cannot {what} Upload {upload_id}: it is already {status}.",
            param="upload_id",
            code=f"upload_{status}",
        )


class UploadLimitError(ClientRateLimitedError):
    """A client has `files.max_pending_uploads` uploads pending already (HTTP 429)."""

    reason = "UPLOAD_LIMIT"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.code = "upload_limit_exceeded"
