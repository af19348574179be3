"""What the router checks of a media call (RouterService.Media) before any routing work: what no
upstream request can be written from is the caller's INVALID_ARGUMENT, not an attempt's."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import media_pb2
from router_service.errors import InvalidRequestError
from router_service.providers._base import MEDIA_PATHS

__all__ = ["check_media"]

_TRANSCRIPTIONS = media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS


def check_media(params: media_pb2.MediaParams) -> None:
    """A known operation, `params_json` a JSON object (or empty) that does not ask to stream, and
    a non-empty file for a transcription, none for the others. `model` is the context's check;
    the size of it all is gRPC's (`server.max_message_bytes`)."""
    if params.operation not in MEDIA_PATHS:
        raise InvalidRequestError(
            "`operation` must be one of moderations, image generations, speech, transcriptions.",
            param="operation",
        )
    try:
        fields = orjson.loads(params.params_json) if params.params_json else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"`params_json` is not JSON: {exc}", param="params_json"
        ) from None
    if not isinstance(fields, dict):
        raise InvalidRequestError("`params_json` must be a JSON object.", param="params_json")
    if fields.get("stream") not in (None, False, "false"):
        raise InvalidRequestError(
            "Streaming is not supported on this endpoint through the router: leave `stream` unset.",
            param="stream",
        )
    transcription = params.operation == _TRANSCRIPTIONS
    if transcription and not params.file.data:
        raise InvalidRequestError("A transcription needs the audio `file`.", param="file")
    if not transcription and params.HasField("file"):
        raise InvalidRequestError(
            f"/{MEDIA_PATHS[params.operation]} takes no `file`.", param="file"
        )
