"""OpenAI's Files and Batch APIs: `/v1/files` and `/v1/batches` (the SDK's `client.files` and
`client.batches`).

The router keeps the files and runs the batches (`UploadFile` … `CancelBatch`: the caller's own,
by its client key); the edge translates, one router call per request. An upload is a
`multipart/form-data` form (`file`, `purpose`) read within the upload limit, as the media
endpoints' are.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    MediaUploads,
    batch_request_from_openai,
    batch_to_openai,
    file_to_openai,
    list_page,
)
from clients.switchboard.v1 import batches_pb2 as bpb

from ._body import parse_request, read_json_object
from ._errors import EdgeError
from ._form import read_upload_form
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata
from ._numbers import shown_number, whole_number
from ._openapi import ERRORS, json_operation
from ._state import edge_state

__all__ = ["call_router", "path_param", "router"]

router = APIRouter()

_UPLOAD = MediaUploads(fields=("file",), required=("file",), once=("file",))
_STR = {"type": "string"}
_FILE_ID = {"parameters": [{"name": "file_id", "in": "path", "required": True, "schema": _STR}]}
_BATCH_ID = {"parameters": [{"name": "batch_id", "in": "path", "required": True, "schema": _STR}]}
_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"enum": ["batch", "user_data"]},
                    },
                }
            }
        },
    },
    "responses": ERRORS,
}
_CREATE_BATCH = json_operation(
    {
        "type": "object",
        "required": ["input_file_id", "endpoint", "completion_window"],
        "properties": {
            "input_file_id": _STR,
            "endpoint": _STR,
            "completion_window": {"enum": ["24h"]},
            "metadata": {"type": "object", "additionalProperties": _STR},
        },
    }
)


async def call_router(request: Request, rpc: str, message: Any) -> Any:
    """The router's answer to `rpc` with `message`, on the caller's credentials."""
    state = edge_state(request)
    method = getattr(state.router(), rpc)
    return await method(
        message, timeout=state.settings.request_timeout_s, metadata=forwarded_metadata(request)
    )


@router.post("/v1/files", openapi_extra=_UPLOAD_FORM)
async def upload_file(request: Request) -> Response:
    limit = edge_state(request).settings.upload_limit
    fields, (file,) = await read_upload_form(request, limit, _UPLOAD)
    purpose = fields.get("purpose")
    if not isinstance(purpose, str):
        raise EdgeError(400, "Missing required parameter: 'purpose'.", code=None, param="purpose")
    upload = bpb.UploadFileRequest(
        filename=file.filename,
        purpose=purpose,
        content=file.data,
        expires_after_s=_expires_after_s(fields),
    )
    kept = await call_router(request, "upload_file", upload)
    return JSONBytesResponse(file_to_openai(kept.file))


@router.get("/v1/files", responses=ERRORS)
async def list_files(request: Request) -> Response:
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise EdgeError(
            400,
            f"Invalid 'order': {order[:32]!r}. It must be 'asc' or 'desc'.",
            code="invalid_value",
            param="order",
        )
    listing = bpb.ListFilesRequest(
        limit=_limit(query.get("limit"), 10_000),
        after=query.get("after", ""),
        purpose=query.get("purpose", ""),
        order=order,
    )
    found = await call_router(request, "list_files", listing)
    return JSONBytesResponse(list_page([file_to_openai(f) for f in found.files], found.has_more))


@router.get("/v1/files/{file_id}", responses=ERRORS, openapi_extra=_FILE_ID)
async def retrieve_file(request: Request) -> Response:
    found = await call_router(
        request, "get_file", bpb.GetFileRequest(id=path_param(request, "file_id"))
    )
    return JSONBytesResponse(file_to_openai(found.file))


@router.get("/v1/files/{file_id}/content", responses=ERRORS, openapi_extra=_FILE_ID)
async def file_content(request: Request) -> Response:
    asked = bpb.GetFileContentRequest(id=path_param(request, "file_id"))
    found = await call_router(request, "get_file_content", asked)
    return Response(found.content, media_type="application/octet-stream")


@router.delete("/v1/files/{file_id}", responses=ERRORS, openapi_extra=_FILE_ID)
async def delete_file(request: Request) -> Response:
    file_id = path_param(request, "file_id")
    await call_router(request, "delete_file", bpb.DeleteFileRequest(id=file_id))
    return JSONBytesResponse({"id": file_id, "object": "file", "deleted": True})


@router.post("/v1/batches", openapi_extra=_CREATE_BATCH)
async def create_batch(request: Request) -> Response:
    body = await read_json_object(request, edge_state(request).settings.max_body_bytes)
    made = await call_router(
        request, "create_batch", parse_request(batch_request_from_openai, body)
    )
    return JSONBytesResponse(batch_to_openai(made.batch))


@router.get("/v1/batches", responses=ERRORS)
async def list_batches(request: Request) -> Response:
    query = request.query_params
    listing = bpb.ListBatchesRequest(
        limit=_limit(query.get("limit"), 100), after=query.get("after", "")
    )
    found = await call_router(request, "list_batches", listing)
    page = [batch_to_openai(b) for b in found.batches]
    return JSONBytesResponse(list_page(page, found.has_more))


@router.get("/v1/batches/{batch_id}", responses=ERRORS, openapi_extra=_BATCH_ID)
async def retrieve_batch(request: Request) -> Response:
    found = await call_router(
        request, "get_batch", bpb.GetBatchRequest(id=path_param(request, "batch_id"))
    )
    return JSONBytesResponse(batch_to_openai(found.batch))


@router.post("/v1/batches/{batch_id}/cancel", responses=ERRORS, openapi_extra=_BATCH_ID)
async def cancel_batch(request: Request) -> Response:
    asked = bpb.CancelBatchRequest(id=path_param(request, "batch_id"))
    cancelled = await call_router(request, "cancel_batch", asked)
    return JSONBytesResponse(batch_to_openai(cancelled.batch))


def path_param(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    return value


def _expires_after_s(fields: dict[str, Any]) -> int:
    """An upload's `expires_after` (the SDK sends `expires_after[anchor]` and
    `expires_after[seconds]` form fields) as seconds after it is made; 0 when it has none. The
    router checks the bounds."""
    anchor, seconds = fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return 0
    if anchor != "created_at":
        raise EdgeError(
            400,
            "`expires_after.anchor` must be 'created_at'.",
            code="invalid_value",
            param="expires_after.anchor",
        )
    number = whole_number(seconds if isinstance(seconds, str) else None)
    if number is None:
        raise EdgeError(
            400,
            "`expires_after.seconds` must be a whole number of seconds.",
            code="invalid_value",
            param="expires_after.seconds",
        )
    return max(number, 1)  # the router checks its bounds (0 would read as none)


def _limit(value: str | None, most: int) -> int:
    if value is None:
        return 0  # the router's default
    number = whole_number(value)
    if number is None or not 1 <= number <= most:
        raise EdgeError(
            400,
            f"Invalid 'limit': {shown_number(value)}. It must be an integer from 1 to {most}.",
            code="invalid_value",
            param="limit",
        )
    return number
