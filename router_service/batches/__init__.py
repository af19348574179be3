"""Files and batches (OpenAI's Files and Batch APIs): what the router keeps for them. The runner
of batches is the server's (`router_service/server/_batches.py`)."""

from router_service.batches._answers import (
    PAGE_BYTES,
    Answered,
    AnswersNotKeptError,
    AnswerWriter,
    BatchAnswers,
    LineResult,
)
from router_service.batches._errors import (
    BatchNotCancellableError,
    BatchNotFoundError,
    BatchWaitLimitError,
    FileQuotaError,
    FileTooLargeError,
    StoredFileNotFoundError,
    UploadLimitError,
    UploadNotFoundError,
    UploadNotPendingError,
)
from router_service.batches._files import (
    OUTPUT_PURPOSE,
    UPLOAD_PURPOSES,
    StoredFiles,
    output_file_id,
)
from router_service.batches._lines import ENDPOINTS, BatchLine, check_create, parse_lines
from router_service.batches._records import (
    ENDED,
    RUNNING,
    STOPPED_MESSAGE,
    BatchRecords,
    Ending,
    answered_locally,
    ending_mark,
    failed,
    marked_ending,
    shared_throughout,
)
from router_service.batches._runs import BatchRuns, Claim
from router_service.batches._upload_names import upload_file_id
from router_service.batches._uploads import Uploads

__all__ = [
    "ENDED",
    "ENDPOINTS",
    "OUTPUT_PURPOSE",
    "PAGE_BYTES",
    "RUNNING",
    "STOPPED_MESSAGE",
    "UPLOAD_PURPOSES",
    "AnswerWriter",
    "Answered",
    "AnswersNotKeptError",
    "BatchAnswers",
    "BatchLine",
    "BatchNotCancellableError",
    "BatchNotFoundError",
    "BatchRecords",
    "BatchRuns",
    "BatchWaitLimitError",
    "Claim",
    "Ending",
    "FileQuotaError",
    "FileTooLargeError",
    "LineResult",
    "StoredFileNotFoundError",
    "StoredFiles",
    "UploadLimitError",
    "UploadNotFoundError",
    "UploadNotPendingError",
    "Uploads",
    "answered_locally",
    "check_create",
    "ending_mark",
    "failed",
    "marked_ending",
    "output_file_id",
    "parse_lines",
    "shared_throughout",
    "upload_file_id",
]
