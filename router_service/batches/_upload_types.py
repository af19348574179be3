"""The MIME types an upload in parts (`Uploads.create`) may declare for its purpose, as OpenAI
holds them: a `batch` file is JSON lines, so it is declared as one (`text/jsonl`,
`application/jsonl`, `application/x-ndjson`, `application/json`…); a `user_data` file is any
file, declared as any well-formed `type/subtype`. Compared without case or parameters
(`; charset=utf-8`), and held to 255 characters (a type and a subtype of 127 each, RFC 6838):
it is kept with the upload's object."""

from __future__ import annotations

import re

from router_service.errors import InvalidRequestError

__all__ = ["check_mime_type"]

_JSON_LINES = frozenset(
    {
        "application/json",
        "application/jsonl",
        "application/jsonlines",
        "application/x-jsonl",
        "application/x-jsonlines",
        "application/x-ndjson",
        "application/ndjson",
        "text/jsonl",
        "text/x-jsonl",
    }
)
_TAKEN = {"batch": _JSON_LINES}
_MOST = 255
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_WELL_FORMED = re.compile(rf"{_TOKEN}/{_TOKEN}")


def check_mime_type(purpose: str, mime_type: str) -> None:
    """Refuse `mime_type` unless an upload of `purpose` (checked already) may declare it."""
    if not mime_type:
        raise InvalidRequestError("Missing required parameter: 'mime_type'.", param="mime_type")
    if len(mime_type) > _MOST:
        raise InvalidRequestError(
            f"`mime_type` must be at most {_MOST} characters.", param="mime_type"
        )
    essence = mime_type.split(";", 1)[0].strip()
    taken = _TAKEN.get(purpose)
    if not _WELL_FORMED.fullmatch(essence) or (taken and essence.lower() not in taken):
        shown = mime_type[:100]
        wanted = ", ".join(sorted(taken)) if taken else "a MIME type such as text/plain"
        raise InvalidRequestError(
            f"Invalid mime_type {shown!r} for purpose {purpose!r}: expected {wanted}.",
            param="mime_type",
        )
