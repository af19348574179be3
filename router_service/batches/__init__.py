"""Files and batches (OpenAI's Files and Batch APIs): what the router keeps for them. The runner
of batches is the server's (`router_service/server/_batches.py`)."""

from router_service.batches._errors import (
    BatchNotCancellableError,
    BatchNotFoundError,
    FileQuotaError,
    FileTooLargeError,
    StoredFileNotFoundError,
)
from router_service.batches._files import OUTPUT_PURPOSE, UPLOAD_PURPOSES, StoredFiles
from router_service.batches._lines import ENDPOINTS, BatchLine, parse_lines
from router_service.batches._records import (
    ENDED,
    RUNNING,
    STOPPED_MESSAGE,
    BatchRecords,
    failed,
)

__all__ = [
    "ENDED",
    "ENDPOINTS",
    "OUTPUT_PURPOSE",
    "RUNNING",
    "STOPPED_MESSAGE",
    "UPLOAD_PURPOSES",
    "BatchLine",
    "BatchNotCancellableError",
    "BatchNotFoundError",
    "BatchRecords",
    "FileQuotaError",
    "FileTooLargeError",
    "StoredFileNotFoundError",
    "StoredFiles",
    "failed",
    "parse_lines",
]
