"""OpenAI's Files and Batch API objects from the router's messages (`StoredFile`, `Batch`),
and a create-batch body into its request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from clients.codec._conversations import conversation_metadata_from_openai
from clients.codec._json import expect_int, expect_object, expect_str, missing
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import batches_pb2

__all__ = [
    "batch_request_from_openai",
    "batch_to_openai",
    "expires_after_s",
    "file_to_openai",
    "list_page",
]

# A batch's instants: OpenAI's fields, null until taken (0 in the message).
_INSTANTS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def file_to_openai(file: batches_pb2.StoredFile) -> dict[str, Any]:
    """OpenAI's File object."""
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": file.created_at,
        "expires_at": file.expires_at or None,
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "status_details": None,
    }


def batch_to_openai(batch: batches_pb2.Batch) -> dict[str, Any]:
    """OpenAI's Batch object."""
    counts = batch.request_counts
    out: dict[str, Any] = {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id or None,
        "error_file_id": batch.error_file_id or None,
        "created_at": batch.created_at,
        **{name: getattr(batch, name) or None for name in _INSTANTS},
        "request_counts": {
            "total": counts.total,
            "completed": counts.completed,
            "failed": counts.failed,
        },
        "metadata": orjson.loads(batch.metadata_json) if batch.metadata_json else None,
        "model": batch.model or None,
        "usage": _usage(batch.usage) if batch.HasField("usage") else None,
    }
    if batch.errors:
        out["errors"] = {"object": "list", "data": [_error(e) for e in batch.errors]}
    return out


def list_page(data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's cursor page of `data` (files, batches): newest first, `after` the last id."""
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def batch_request_from_openai(body: dict[str, Any]) -> batches_pb2.CreateBatchRequest:
    """A create-batch body's request; raises :class:`InvalidRequestError` naming the field (the
    router checks the values)."""
    for name in ("input_file_id", "endpoint", "completion_window"):
        if body.get(name) is None:
            missing(name)
    return batches_pb2.CreateBatchRequest(
        input_file_id=expect_str(body["input_file_id"], "input_file_id"),
        endpoint=expect_str(body["endpoint"], "endpoint"),
        completion_window=expect_str(body["completion_window"], "completion_window"),
        metadata_json=conversation_metadata_from_openai(body),
        output_expires_after_s=expires_after_s(body.get("output_expires_after")),
    )


def expires_after_s(value: Any, field: str = "output_expires_after") -> int:
    """An expiry policy's seconds (`field`: its name in the body; 0: none); the router checks
    their bounds."""
    if value is None:
        return 0
    policy = expect_object(value, field)
    anchor = policy.get("anchor")
    if anchor != "created_at":
        raise InvalidRequestError(
            f"`{field}.anchor` must be 'created_at'.", param=f"{field}.anchor"
        )
    path = f"{field}.seconds"
    if policy.get("seconds") is None:
        missing(path)
    return max(expect_int(policy["seconds"], path), 1)  # 0 would read as none


def _usage(usage: batches_pb2.BatchUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _error(error: batches_pb2.BatchError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "param": error.param or None,
        "line": error.line if error.HasField("line") else None,
    }
