"""OpenAI's moderations, images, speech, transcriptions and translations bodies, and rerank
bodies (Cohere's, `_rerank`) ⇄ `MediaParams`,
and what each operation is: its OpenAI path (`MEDIA_PATHS`) and the files its form takes
(`MEDIA_UPLOADS`), one table for the edge that reads the forms, the router that checks them and
the adapters that write them again.

The router reads `model`; every other field travels as the caller wrote it (`params_json`), to
be checked by the upstream that answers, so a field OpenAI adds works without a release."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clients.codec._json import (
    at,
    at_index,
    dump_extra,
    expect_list,
    expect_object,
    expect_str,
    missing,
)
from clients.codec._rerank import rerank_fields
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import media_pb2

__all__ = [
    "MEDIA_PATHS",
    "MEDIA_UPLOADS",
    "MediaUploads",
    "UploadProblem",
    "check_image_references",
    "media_params_from_openai",
    "referenced_edit",
    "upload_problem",
]

# Each operation's path after OpenAI's `/v1/` (what messages and spans call it, too).
MEDIA_PATHS: dict[media_pb2.MediaOperation.ValueType, str] = {
    media_pb2.MEDIA_OPERATION_MODERATIONS: "moderations",
    media_pb2.MEDIA_OPERATION_IMAGE_GENERATIONS: "images/generations",
    media_pb2.MEDIA_OPERATION_IMAGE_EDITS: "images/edits",
    media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS: "images/variations",
    media_pb2.MEDIA_OPERATION_AUDIO_SPEECH: "audio/speech",
    media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS: "audio/transcriptions",
    media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS: "audio/translations",
    media_pb2.MEDIA_OPERATION_RERANK: "rerank",
}


@dataclass(frozen=True, slots=True)
class MediaUploads:
    """The files of an operation's `multipart/form-data` form."""

    # The form fields a file may be sent as; the first is the one upload's, for `file`.
    fields: tuple[str, ...]
    # At least one file under one of these.
    required: tuple[str, ...]
    # At most one file under each of these.
    once: tuple[str, ...]
    # Files at most (OpenAI's: 16 images to edit, a mask and a markup).
    most: int = 1
    # Files at most under the `required` fields together (OpenAI's: 16 images to edit).
    most_required: int = 1
    # In `MediaParams.files`, each naming its field; else the one `MediaParams.file`.
    several: bool = False


def _one(field: str) -> MediaUploads:
    return MediaUploads(fields=(field,), required=(field,), once=(field,))


MEDIA_UPLOADS: dict[media_pb2.MediaOperation.ValueType, MediaUploads] = {
    media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS: _one("file"),
    media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS: _one("file"),
    media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS: _one("image"),
    media_pb2.MEDIA_OPERATION_IMAGE_EDITS: MediaUploads(
        fields=("image", "image[]", "mask", "markup"),
        required=("image", "image[]"),
        once=("mask", "markup"),
        most=18,
        most_required=16,
        several=True,
    ),
}


@dataclass(frozen=True, slots=True)
class UploadProblem:
    """Why an operation cannot take these files: `field` is the form field it is about, `index`
    the offending file's place among them (None: a required one is missing)."""

    message: str
    field: str
    index: int | None


def upload_problem(uploads: MediaUploads, fields: Sequence[str]) -> UploadProblem | None:
    """What is wrong with files sent under these form `fields` (in order): a field the form has
    no file for, a second file where one is allowed, more than `most_required` under the
    required fields (an edit's 17th image), or no file where one is required."""
    seen: set[str] = set()
    required = 0
    for index, field in enumerate(fields):
        if field not in uploads.fields:
            expected = ", ".join(f"`{name}`" for name in uploads.fields)
            message = f"Unexpected file field `{field}`: this form takes files as {expected}."
            return UploadProblem(message, field, index)
        if field in uploads.once and field in seen:
            return UploadProblem(f"Only one `{field}` file may be sent.", field, index)
        required += field in uploads.required
        if required > uploads.most_required:
            names = " and ".join(f"`{name}`" for name in uploads.required)
            message = f"At most {uploads.most_required} files may be sent as {names}."
            return UploadProblem(message, field, index)
        seen.add(field)
    if not seen.intersection(uploads.required):
        field = uploads.required[0]
        return UploadProblem(f"Missing required parameter: '{field}'.", field, None)
    return None


def referenced_edit(params: media_pb2.MediaParams) -> bool:
    """Whether `params` are an image edit by reference (OpenAI's JSON body: `images` and a
    `mask` as `image_url`s or `file_id`s), not an upload."""
    edits = params.operation == media_pb2.MEDIA_OPERATION_IMAGE_EDITS
    return edits and not params.files and not params.HasField("file")


def check_image_references(fields: dict[str, Any]) -> None:
    """A JSON image edit's references: `images`, 1 to 16 objects each of an `image_url` or a
    `file_id`; a `mask`, when given, one such object. InvalidRequestError names the path."""
    if "images" not in fields:
        missing("images")
    images = expect_list(fields["images"], "images")
    most = MEDIA_UPLOADS[media_pb2.MEDIA_OPERATION_IMAGE_EDITS].most_required
    if not 1 <= len(images) <= most:
        raise InvalidRequestError(f"images: give 1 to {most} images.", "images")
    for index, image in enumerate(images):
        _reference(image, at_index("images", index))
    if fields.get("mask") is not None:
        _reference(fields["mask"], "mask")


def _reference(value: Any, path: str) -> None:
    reference = expect_object(value, path)
    given = [key for key in ("image_url", "file_id") if reference.get(key) is not None]
    if len(given) != 1:
        raise InvalidRequestError(f"{path}: give one of `image_url` or `file_id`.", path)
    expect_str(reference[given[0]], at(path, given[0]))


def media_params_from_openai(
    operation: media_pb2.MediaOperation.ValueType,
    body: dict[str, Any],
    files: Sequence[media_pb2.MediaFile] = (),
) -> media_pb2.MediaParams:
    """`body`: the JSON body (or an upload form's other fields); `files`: a form's uploads, each
    naming its form `field` (an operation's one upload goes to `file`, its field implied, the
    several of an image edit to `files`). Raises InvalidRequestError without a string `model`,
    and for a rerank as `rerank_fields` does (its documents are sent as strings)."""
    fields = dict(body)
    if "model" not in fields:
        missing("model")
    model = expect_str(fields.pop("model"), "model")
    if operation == media_pb2.MEDIA_OPERATION_RERANK:
        fields = rerank_fields(fields)
    # The fields as JSON, the one that cannot be (nested too deep) named.
    params = media_pb2.MediaParams(
        operation=operation, model=model, params_json=dump_extra(fields, "")
    )
    uploads = MEDIA_UPLOADS.get(operation)
    if operation == media_pb2.MEDIA_OPERATION_IMAGE_EDITS and not files:
        check_image_references(fields)
    if uploads is not None and uploads.several:
        params.files.extend(files)
    elif files:
        params.file.CopyFrom(files[0])
        params.file.ClearField("field")
    return params
