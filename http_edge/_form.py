"""Reading an upload's `multipart/form-data` body (transcriptions, translations, image edits and
variations) within the upload limit: its text fields, and its files as `MediaFile`s named by
their form field, checked against what the operation's form takes (`MEDIA_UPLOADS`); and the
one parse of every form the edge reads (`parse_whole_form`: realtime calls' too), which refuses
a body cut before its closing boundary."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from clients import MediaUploads, upload_problem
from clients.switchboard.v1 import media_pb2

from ._body import read_body
from ._errors import EdgeError

__all__ = ["parse_whole_form", "read_upload_form"]

# A form's fields besides its files (OpenAI's image edit form has about twenty). A field is as
# large as the upload limit lets it be: a diarization's `known_speaker_references[]` are data
# URLs of up to 10 seconds of audio each (hundreds of KB), and the whole body is held to that
# limit first, and its message after (`_routes_media`).
_MAX_FIELDS = 32


async def read_upload_form(
    request: Request, limit: int, uploads: MediaUploads
) -> tuple[dict[str, Any], list[media_pb2.MediaFile]]:
    """The form's text fields (a list for a repeated one) and its files, in order, the whole
    body read within `limit` first (413 past it, all files together), as for a JSON body. A file
    under a field the form does not take, a text under a file's field, too many files, a
    second file where one is allowed or none where one is required, a body cut before its
    closing boundary: 400."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise EdgeError(
            400, "This endpoint takes multipart/form-data.", code="invalid_content_type"
        )
    raw = await read_body(request, limit)
    # One file more than the form takes: an extra one is named by `_split` (a field the form
    # does not take) or `upload_problem` (a second one where one is allowed), not by the
    # parser's "Too many files" that says neither.
    form = await parse_whole_form(
        request, raw, max_files=uploads.most + 1, max_fields=_MAX_FIELDS, max_part_size=limit
    )
    try:
        fields, files = await _split(form, uploads)
    finally:
        await form.close()
    problem = upload_problem(uploads, [file.field for file in files])
    if problem is not None:
        raise EdgeError(400, problem.message, code="invalid_argument", param=problem.field)
    return fields, files


class _WholeForm(MultiPartParser):
    """A form parser that knows whether the body reached its closing `--boundary--`: one that
    ends before it lost its end (a file cut short, a part never closed), which the parser
    would otherwise answer with the parts that did close, as if they were the whole form."""

    ended = False

    def on_end(self) -> None:
        self.ended = True


async def parse_whole_form(
    request: Request, raw: bytes, *, max_files: int, max_fields: int, max_part_size: int
) -> FormData:
    """The `multipart/form-data` body `raw` (read whole) as a form, within these bounds. A body
    that is no such form, or past a bound, or cut before its closing boundary: 400
    `invalid_form` (the caller's to `close()` only when it returns)."""
    parser = _WholeForm(
        request.headers,
        _ended_by(raw, lambda: parser.ended),
        max_files=max_files,
        max_fields=max_fields,
        max_part_size=max_part_size,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise EdgeError(400, f"Invalid form: {exc.message}", code="invalid_form") from None


async def _ended_by(raw: bytes, ended: Callable[[], bool]) -> AsyncGenerator[bytes, None]:
    yield raw
    # Raised here, inside the parse: the parser closes the files it opened (the cut one's).
    if not ended():
        raise MultiPartException("the form ends before its closing boundary")


async def _split(
    form: FormData, uploads: MediaUploads
) -> tuple[dict[str, Any], list[media_pb2.MediaFile]]:
    fields: dict[str, Any] = {}
    files: list[media_pb2.MediaFile] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name not in uploads.fields:
                raise EdgeError(
                    400, f"Unexpected file field `{name}`.", code="invalid_form", param=name
                )
            files.append(
                media_pb2.MediaFile(
                    data=await value.read(),
                    filename=value.filename or "",
                    content_type=value.content_type or "",
                    field=name,
                )
            )
        elif name in uploads.fields:
            raise EdgeError(400, f"`{name}` must be a file.", code="invalid_argument", param=name)
        elif name in fields or name.endswith("[]"):
            held = fields.setdefault(name, [])
            fields[name] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            fields[name] = value
    return fields, files
