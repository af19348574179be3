"""OpenAI's moderations, image generations, speech and transcriptions bodies ⇄ `MediaParams`.

The router reads `model`; every other field travels as the caller wrote it (`params_json`), to
be checked by the upstream that answers, so a field OpenAI adds works without a release."""

from __future__ import annotations

from typing import Any

import orjson

from clients.codec._json import expect_str, missing
from clients.switchboard.v1 import media_pb2

__all__ = ["media_params_from_openai"]


def media_params_from_openai(
    operation: media_pb2.MediaOperation.ValueType,
    body: dict[str, Any],
    file: media_pb2.MediaFile | None = None,
) -> media_pb2.MediaParams:
    """`body`: the JSON body (or a transcription's form fields); `file`: a transcription's
    upload. Raises InvalidRequestError without a string `model`."""
    fields = dict(body)
    if "model" not in fields:
        missing("model")
    model = expect_str(fields.pop("model"), "model")
    params = media_pb2.MediaParams(
        operation=operation, model=model, params_json=orjson.dumps(fields).decode()
    )
    if file is not None:
        params.file.CopyFrom(file)
    return params
