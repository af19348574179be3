"""`POST /v1/moderations`, `/v1/images/generations`, `/v1/audio/speech` (JSON bodies) and
`/v1/audio/transcriptions` (a multipart form with the audio file): each is one RouterService.Media
call, answered with the upstream's body and content type as they are (JSON, text or audio)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import Response

from clients import media_params_from_openai
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1.router_service_pb2 import MediaRequest

from ._body import parse_request, read_body, read_json_object
from ._disconnect import unless_disconnected
from ._errors import EdgeError
from ._headers import route_headers
from ._metadata import forwarded_metadata, routing_options
from ._openapi import IMAGES, MODERATIONS, SPEECH, TRANSCRIPTIONS
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()

# A form's fields besides its file (OpenAI's transcription form has about a dozen), and the
# size of each: small, so that their JSON stays within the upload's bound.
_MAX_FIELDS = 32
_MAX_FIELD_BYTES = 16 * 1024


@router.post("/v1/moderations", openapi_extra=MODERATIONS)
async def moderations(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_MODERATIONS)


@router.post("/v1/images/generations", openapi_extra=IMAGES)
async def image_generations(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS)


@router.post("/v1/audio/speech", openapi_extra=SPEECH)
async def speech(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_AUDIO_SPEECH)


@router.post("/v1/audio/transcriptions", openapi_extra=TRANSCRIPTIONS)
async def transcriptions(request: Request) -> Response:
    limit = edge_state(request).settings.upload_limit
    fields, file = await _read_form(request, limit)
    params = parse_request(
        lambda body: media_params_from_openai(
            media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS, body, file
        ),
        fields,
    )
    if params.ByteSize() > limit:  # the fields as JSON may be longer than in the form
        raise _too_large(limit)
    return await _call(request, params)


async def _json_call(request: Request, operation: media_pb2.MediaOperation.ValueType) -> Response:
    body = await read_json_object(request, edge_state(request).settings.max_body_bytes)
    params = parse_request(lambda fields: media_params_from_openai(operation, fields), body)
    return await _call(request, params)


async def _call(request: Request, params: media_pb2.MediaParams) -> Response:
    state = edge_state(request)
    call = MediaRequest(params=params, routing=routing_options(request))
    media = state.router().media(
        call, timeout=state.settings.request_timeout_s, metadata=forwarded_metadata(request)
    )
    response = await unless_disconnected(request, media)
    result = response.result
    return Response(
        content=result.body,
        media_type=result.content_type or "application/octet-stream",
        headers=route_headers(response.route),
    )


def _too_large(limit: int) -> EdgeError:
    return EdgeError(
        413, f"The upload is larger than the limit of {limit} bytes.", code="request_too_large"
    )


async def _read_form(request: Request, limit: int) -> tuple[dict[str, Any], media_pb2.MediaFile]:
    """The form's fields (a list for a repeated one) and its `file`, the whole body read within
    `limit` first (413 past it), as for a JSON body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise EdgeError(
            400, "A transcription is sent as multipart/form-data.", code="invalid_content_type"
        )
    raw = await read_body(request, limit)

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield raw

    parser = MultiPartParser(
        request.headers,
        chunks(),
        max_files=1,
        max_fields=_MAX_FIELDS,
        max_part_size=_MAX_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise EdgeError(400, f"Invalid form: {exc.message}", code="invalid_form") from None
    try:
        fields: dict[str, Any] = {}
        file: media_pb2.MediaFile | None = None
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "file":
                    raise EdgeError(
                        400, f"Unexpected file field `{name}`.", code="invalid_form", param=name
                    )
                file = media_pb2.MediaFile(
                    data=await value.read(),
                    filename=value.filename or "",
                    content_type=value.content_type or "",
                )
            elif name in fields or name.endswith("[]"):
                held = fields.setdefault(name, [])
                fields[name] = [*held, value] if isinstance(held, list) else [held, value]
            else:
                fields[name] = value
    finally:
        await form.close()
    if file is None:
        raise EdgeError(
            400, "Missing required parameter: 'file'.", code="invalid_argument", param="file"
        )
    return fields, file
