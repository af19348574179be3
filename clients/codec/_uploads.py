"""OpenAI's Uploads API objects (Upload, Upload Part) from the router's messages, and the
create and complete bodies into their requests."""

from __future__ import annotations

from typing import Any

from clients.codec._batches import expires_after_s, file_to_openai
from clients.codec._json import expect_int, expect_str, missing
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import uploads_pb2

__all__ = [
    "upload_complete_from_openai",
    "upload_part_to_openai",
    "upload_request_from_openai",
    "upload_to_openai",
]


def upload_to_openai(upload: uploads_pb2.Upload) -> dict[str, Any]:
    """OpenAI's Upload object (its `file` once completed, else null)."""
    return {
        "id": upload.id,
        "object": "upload",
        "bytes": upload.bytes,
        "created_at": upload.created_at,
        "expires_at": upload.expires_at,
        "filename": upload.filename,
        "purpose": upload.purpose,
        "status": upload.status,
        "file": file_to_openai(upload.file) if upload.HasField("file") else None,
    }


def upload_part_to_openai(part: uploads_pb2.UploadPart) -> dict[str, Any]:
    """OpenAI's Upload Part object."""
    return {
        "id": part.id,
        "object": "upload.part",
        "created_at": part.created_at,
        "upload_id": part.upload_id,
    }


def upload_request_from_openai(body: dict[str, Any]) -> uploads_pb2.CreateUploadRequest:
    """A create-upload body's request; raises :class:`InvalidRequestError` naming the field (the
    router checks the values)."""
    for name in ("bytes", "filename", "mime_type", "purpose"):
        if body.get(name) is None:
            missing(name)
    return uploads_pb2.CreateUploadRequest(
        bytes=expect_int(body["bytes"], "bytes"),
        filename=expect_str(body["filename"], "filename"),
        mime_type=expect_str(body["mime_type"], "mime_type"),
        purpose=expect_str(body["purpose"], "purpose"),
        expires_after_s=expires_after_s(body.get("expires_after"), "expires_after"),
    )


def upload_complete_from_openai(
    upload_id: str, body: dict[str, Any]
) -> uploads_pb2.CompleteUploadRequest:
    """A complete-upload body's request (`part_ids` in order, `md5` when given)."""
    if body.get("part_ids") is None:
        missing("part_ids")
    part_ids = body["part_ids"]
    if not isinstance(part_ids, list):
        raise InvalidRequestError("`part_ids` must be an array of strings.", param="part_ids")
    md5 = body.get("md5")
    return uploads_pb2.CompleteUploadRequest(
        upload_id=upload_id,
        part_ids=[expect_str(p, f"part_ids[{i}]") for i, p in enumerate(part_ids)],
        md5="" if md5 is None else expect_str(md5, "md5"),
    )
