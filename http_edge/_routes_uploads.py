"""OpenAI's Uploads API: `/v1/uploads` (the SDK's `client.uploads`): a file sent in parts, then
completed into a file as `POST /v1/files` keeps one.

The router keeps the upload and its parts and decides (`CreateUpload`, `AddUploadPart`,
`CompleteUpload`, `CancelUpload`: the caller's own, by its client key); the edge translates,
one router call per request. A part is a `multipart/form-data` form (`data`) read within the
upload limit, as a file's upload is.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    MediaUploads,
    upload_complete_from_openai,
    upload_part_to_openai,
    upload_request_from_openai,
    upload_to_openai,
)
from clients.switchboard.v1 import uploads_pb2 as upb

from ._body import parse_request, read_json_object
from ._form import read_upload_form
from ._json import JSONBytesResponse
from ._openapi import ERRORS, json_operation
from ._routes_batches import call_router, path_param
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()

_PART = MediaUploads(fields=("data",), required=("data",), once=("data",))
_STR = {"type": "string"}
_UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True, "schema": _STR}
_CREATE = json_operation(
    {
        "type": "object",
        "required": ["bytes", "filename", "mime_type", "purpose"],
        "properties": {
            "bytes": {"type": "integer"},
            "filename": _STR,
            "mime_type": _STR,
            "purpose": {"enum": ["batch", "user_data"]},
        },
    }
)
_PART_FORM = {
    "parameters": [_UPLOAD_ID],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {"type": "string", "format": "binary"}},
                }
            }
        },
    },
    "responses": ERRORS,
}
_COMPLETE = {
    **json_operation(
        {
            "type": "object",
            "required": ["part_ids"],
            "properties": {"part_ids": {"type": "array", "items": _STR}, "md5": _STR},
        }
    ),
    "parameters": [_UPLOAD_ID],
}
_CANCEL = {"parameters": [_UPLOAD_ID]}


@router.post("/v1/uploads", openapi_extra=_CREATE)
async def create_upload(request: Request) -> Response:
    body = await read_json_object(request, edge_state(request).settings.max_body_bytes)
    made = await call_router(
        request, "create_upload", parse_request(upload_request_from_openai, body)
    )
    return JSONBytesResponse(upload_to_openai(made.upload))


@router.post("/v1/uploads/{upload_id}/parts", openapi_extra=_PART_FORM)
async def add_upload_part(request: Request) -> Response:
    limit = edge_state(request).settings.upload_limit
    _, (data,) = await read_upload_form(request, limit, _PART)
    part = upb.AddUploadPartRequest(upload_id=path_param(request, "upload_id"), data=data.data)
    added = await call_router(request, "add_upload_part", part)
    return JSONBytesResponse(upload_part_to_openai(added.part))


@router.post("/v1/uploads/{upload_id}/complete", openapi_extra=_COMPLETE)
async def complete_upload(request: Request) -> Response:
    body = await read_json_object(request, edge_state(request).settings.max_body_bytes)
    upload_id = path_param(request, "upload_id")
    asked = parse_request(lambda b: upload_complete_from_openai(upload_id, b), body)
    done = await call_router(request, "complete_upload", asked)
    return JSONBytesResponse(upload_to_openai(done.upload))


@router.post("/v1/uploads/{upload_id}/cancel", responses=ERRORS, openapi_extra=_CANCEL)
async def cancel_upload(request: Request) -> Response:
    asked = upb.CancelUploadRequest(upload_id=path_param(request, "upload_id"))
    cancelled = await call_router(request, "cancel_upload", asked)
    return JSONBytesResponse(upload_to_openai(cancelled.upload))
