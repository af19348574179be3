"""What the router checks of a media call (RouterService.Media) before any routing work: what no
upstream request can be written from is the caller's INVALID_ARGUMENT, not an attempt's."""

from __future__ import annotations

from typing import Any

import orjson

from clients import (
    MEDIA_PATHS,
    MEDIA_UPLOADS,
    MediaUploads,
    asks_stream,
    check_image_references,
    referenced_edit,
    upload_problem,
)
from clients.switchboard.v1 import media_pb2
from router_service.errors import InvalidRequestError

__all__ = ["STREAMED_MEDIA", "check_media"]


# What MediaStream streams: speech's audio (or its events), and the events of these with
# `stream: true`.
STREAMED_MEDIA = frozenset(
    {
        media_pb2.MEDIA_OPERATION_AUDIO_SPEECH,
        media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS,
        media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS,
        media_pb2.MEDIA_OPERATION_IMAGE_EDITS,
    }
)


def check_media(params: media_pb2.MediaParams, *, streamed: bool = False) -> None:
    """A known operation, `params_json` a JSON object (or empty) that asks to stream only when
    `streamed` (MediaStream) and the operation streams, and the files the operation's form
    takes (`MEDIA_UPLOADS`): none for a JSON operation. `model` is the context's check; the
    size of it all is gRPC's (`server.max_message_bytes`)."""
    if params.operation not in MEDIA_PATHS:
        names = ", ".join(MEDIA_PATHS.values())
        raise InvalidRequestError(f"`operation` must be one of {names}.", param="operation")
    fields = _fields(params.params_json)
    path = MEDIA_PATHS[params.operation]
    _check_stream(fields, params.operation, path, streamed)
    uploads = MEDIA_UPLOADS.get(params.operation)
    if uploads is None:
        if params.HasField("file") or params.files:
            which = "file" if params.HasField("file") else "files"
            raise InvalidRequestError(f"/{path} takes no `{which}`.", param=which)
        return
    if referenced_edit(params) and "images" in fields:  # OpenAI's JSON edit: references
        check_image_references(fields)
        return
    for name in fields:
        if name in uploads.fields:
            raise InvalidRequestError(
                f"`{name}` is an upload of /{path}: send it as a file, not in `params_json`.",
                param="params_json",
            )
    if uploads.several:
        _check_files(params, uploads, path)
    else:
        _check_file(params, uploads, path)


def _check_stream(
    fields: dict[str, Any], operation: media_pb2.MediaOperation.ValueType, path: str, streamed: bool
) -> None:
    asks = asks_stream(fields)  # the edge's reading: its choice of Media or MediaStream
    if asks and operation not in STREAMED_MEDIA:
        raise InvalidRequestError(f"/{path} does not stream: leave `stream` unset.", param="stream")
    if streamed and operation not in STREAMED_MEDIA:
        raise InvalidRequestError(f"/{path} does not stream: call Media.", param="operation")
    if asks and not streamed:
        raise InvalidRequestError(
            "Media answers whole: leave `stream` unset, or call MediaStream.", param="stream"
        )
    if asks and operation == media_pb2.MEDIA_OPERATION_AUDIO_SPEECH:
        raise InvalidRequestError(
            '/audio/speech streams by `stream_format` ("sse" or "audio"), not `stream`.',
            param="stream",
        )


def _fields(params_json: str) -> dict[str, Any]:
    try:
        fields = orjson.loads(params_json) if params_json else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"`params_json` is not JSON: {exc}", param="params_json"
        ) from None
    if not isinstance(fields, dict):
        raise InvalidRequestError("`params_json` must be a JSON object.", param="params_json")
    return fields


def _check_file(params: media_pb2.MediaParams, uploads: MediaUploads, path: str) -> None:
    """An operation with one upload: in `file`, not empty, its `field` unset or the form's."""
    if params.files:
        raise InvalidRequestError(f"/{path} takes its one upload in `file`.", param="files")
    if not params.file.data:
        raise InvalidRequestError(f"/{path} needs a non-empty `file`.", param="file")
    field = uploads.fields[0]
    if params.file.field not in ("", field):
        raise InvalidRequestError(
            f"/{path} sends its `file` as `{field}`: leave `field` empty.", param="file.field"
        )


def _check_files(params: media_pb2.MediaParams, uploads: MediaUploads, path: str) -> None:
    """An operation with several uploads: in `files`, each not empty and under a field the form
    takes, each field taken as often as it may be, and the required one present."""
    if params.HasField("file"):
        raise InvalidRequestError(
            f"/{path} takes its uploads in `files`, each naming its `field`.", param="file"
        )
    problem = upload_problem(uploads, [file.field for file in params.files])
    if problem is not None:
        param = "files" if problem.index is None else f"files[{problem.index}].field"
        raise InvalidRequestError(f"/{path}: {problem.message}", param=param)
    for index, file in enumerate(params.files):
        if not file.data:
            raise InvalidRequestError(
                f"/{path}: file {index} (`{file.field}`) is empty.", param=f"files[{index}].data"
            )
