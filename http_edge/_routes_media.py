"""`POST /v1/moderations`, `/v1/images/generations`, `/v1/audio/speech` (JSON bodies), and
`/v1/audio/transcriptions`, `/v1/audio/translations`, `/v1/images/edits`, `/v1/images/variations`
(multipart forms with their files): each is one RouterService.Media call, answered with the
upstream's body and content type as they are (JSON, text or audio); speech, and transcriptions
and images with `stream: true`, are a RouterService.MediaStream call (`_media_stream`).
`/v1/rerank` (and `/v2/rerank`, `/rerank`; JSON) is a Media call too, answered with the JSON the
router made of the upstream's (Cohere v2's shape, whatever the upstream's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import MEDIA_UPLOADS, asks_stream, media_params_from_openai
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1.router_service_pb2 import MediaRequest

from ._body import parse_request, read_json_object
from ._disconnect import unless_disconnected
from ._errors import EdgeError
from ._form import read_upload_form
from ._headers import route_headers
from ._media_stream import media_stream_response
from ._metadata import forwarded_metadata, routing_options
from ._openapi_media import (
    IMAGE_EDITS,
    IMAGE_VARIATIONS,
    IMAGES,
    MODERATIONS,
    RERANK,
    SPEECH,
    TRANSCRIPTIONS,
    TRANSLATIONS,
)
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/moderations", openapi_extra=MODERATIONS)
async def moderations(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_MODERATIONS)


# Cohere's SDK (v2 client) posts to /v2/rerank; Jina's, vLLM's and LiteLLM's clients to
# /v1/rerank or /rerank: one operation, one answer shape (Cohere v2's).
@router.post("/v2/rerank", openapi_extra=RERANK)
@router.post("/v1/rerank", openapi_extra=RERANK)
@router.post("/rerank", openapi_extra=RERANK)
async def rerank(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_RERANK)


@router.post("/v1/images/generations", openapi_extra=IMAGES)
async def image_generations(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS)


@router.post("/v1/images/edits", openapi_extra=IMAGE_EDITS)
async def image_edits(request: Request) -> Response:
    """A form of uploads, or OpenAI's JSON body naming its images (`images`, `mask`)."""
    operation = media_pb2.MEDIA_OPERATION_IMAGE_EDITS
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        return await _json_call(request, operation)
    return await _form_call(request, operation)


@router.post("/v1/images/variations", openapi_extra=IMAGE_VARIATIONS)
async def image_variations(request: Request) -> Response:
    return await _form_call(request, media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS)


@router.post("/v1/audio/speech", openapi_extra=SPEECH)
async def speech(request: Request) -> Response:
    return await _json_call(request, media_pb2.MEDIA_OPERATION_AUDIO_SPEECH)


@router.post("/v1/audio/transcriptions", openapi_extra=TRANSCRIPTIONS)
async def transcriptions(request: Request) -> Response:
    return await _form_call(request, media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS)


@router.post("/v1/audio/translations", openapi_extra=TRANSLATIONS)
async def translations(request: Request) -> Response:
    return await _form_call(request, media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS)


async def _form_call(request: Request, operation: media_pb2.MediaOperation.ValueType) -> Response:
    limit = edge_state(request).settings.upload_limit
    fields, files = await read_upload_form(request, limit, MEDIA_UPLOADS[operation])
    if _json_over(fields, limit):  # before it is written: 6 times the form at most
        raise _too_large(limit)
    params, streamed = parse_request(lambda body: _parsed(operation, body, files), fields)
    if params.ByteSize() > limit:  # the fields as JSON may be longer than in the form
        raise _too_large(limit)
    return await _call(request, params, streamed)


async def _json_call(request: Request, operation: media_pb2.MediaOperation.ValueType) -> Response:
    body = await read_json_object(request, edge_state(request).settings.max_body_bytes)
    params, streamed = parse_request(lambda fields: _parsed(operation, fields), body)
    return await _call(request, params, streamed)


def _parsed(
    operation: media_pb2.MediaOperation.ValueType,
    fields: dict[str, Any],
    files: list[media_pb2.MediaFile] | None = None,
) -> tuple[media_pb2.MediaParams, bool]:
    """The params, and whether they go as a MediaStream call: speech always (its audio is
    relayed as it arrives), the others when they ask to stream (as the router reads it)."""
    params = media_params_from_openai(operation, fields, files or ())
    speech = operation == media_pb2.MEDIA_OPERATION_AUDIO_SPEECH
    return params, speech or asks_stream(fields)


async def _call(request: Request, params: media_pb2.MediaParams, streamed: bool) -> Response:
    if streamed:
        return await media_stream_response(request, params)
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


# What JSON writes for a character beyond the character itself (orjson's escapes): `\"`, `\\`,
# `\b`, `\t`, `\n`, `\f`, `\r` one more, any other control character (`\u0001`) five more.
_ESCAPES = {chr(code): 5 for code in range(0x20)} | {char: 1 for char in '"\\\b\t\n\f\r'}


def _json_over(fields: dict[str, Any], limit: int) -> bool:
    """Whether the form's text fields as JSON are longer than `limit`, counted without writing
    it: a field of control characters within the upload limit is six times as long as JSON,
    which would be held three times over (bytes, text, message) before its size was checked."""
    texts = [text for value in fields.values() for text in _texts(value)]
    chars = sum(len(text) for text in texts)
    if 6 * chars <= limit:  # no escapes could make it longer (the usual form): no scan
        return False
    escapes = sum(text.count(char) * more for text in texts for char, more in _ESCAPES.items())
    return chars + escapes > limit


def _texts(value: Any) -> list[str]:
    """A field's texts: a repeated field's list, or the one."""
    return value if isinstance(value, list) else [value]


def _too_large(limit: int) -> EdgeError:
    return EdgeError(
        413, f"The upload is larger than the limit of {limit} bytes.", code="request_too_large"
    )
