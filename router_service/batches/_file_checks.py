"""What a file may be uploaded as (`check_upload`), how long it is kept (`asked_ttl_s`), and
the ids of a batch's files."""

from __future__ import annotations

import hashlib

from router_service.errors import InvalidRequestError

__all__ = ["OUTPUT_PURPOSE", "UPLOAD_PURPOSES", "asked_ttl_s", "check_upload", "output_file_id"]

# What a caller may upload; a batch writes its output and error files as OUTPUT_PURPOSE.
UPLOAD_PURPOSES = ("batch", "user_data")
OUTPUT_PURPOSE = "batch_output"
_MAX_FILENAME = 512
# OpenAI's bounds of an upload's `expires_after.seconds` (an hour to 30 days).
_EXPIRES_AFTER_S = (3600, 30 * 24 * 3600)


def check_upload(purpose: str, filename: str) -> None:
    """Refuse an upload (whole, or in parts) of a purpose or a filename not kept here."""
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequestError(
            f"Invalid purpose {purpose!r}: this router keeps files for "
            f"{' and '.join(repr(p) for p in UPLOAD_PURPOSES)} only.",
            param="purpose",
            code="invalid_purpose",
        )
    if not filename:
        raise InvalidRequestError("Missing required parameter: 'filename'.", param="filename")
    if len(filename.encode()) > _MAX_FILENAME:
        raise InvalidRequestError(
            f"`filename` must be at most {_MAX_FILENAME} bytes.", param="filename"
        )
    # As OpenAI refuses it (whole or in parts): a batch's input is JSON lines, named so.
    if purpose == "batch" and not filename.lower().endswith(".jsonl"):
        raise InvalidRequestError(
            "Invalid file format for Batch API. Must be .jsonl", param="filename"
        )


def asked_ttl_s(files_ttl_s: float, expires_after_s: int, param: str) -> float:
    """How long to keep a file asked to expire `expires_after_s` after it is made (0: as
    long as files are kept), never longer than files are (`files_ttl_s`); `param`: the
    request's field asking."""
    if not expires_after_s:
        return files_ttl_s
    least, most = _EXPIRES_AFTER_S
    if not least <= expires_after_s <= most:
        raise InvalidRequestError(f"`{param}` must be {least} to {most}.", param=param)
    return min(float(expires_after_s), files_ttl_s)


def output_file_id(batch_id: str, kind: str) -> str:
    """The id of `batch_id`'s output (`kind`: "output", "error") file, the same wherever its
    end is written (`StoredFiles.keep`: kept once), of an upload's form and length (the
    index's bound is exact for ids of one length). Guessing it reaches nothing: a file's
    names are its client's (`_names`)."""
    digest = hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()
    return f"file-{digest[:24]}"
