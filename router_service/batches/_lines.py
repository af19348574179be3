"""A batch's input file, checked line by line before anything runs (as OpenAI does): each line
a JSON object with a unique `custom_id`, `method` "POST", the batch's endpoint as `url` and a
`body` object not asking to `stream`, all asking for one model (OpenAI's batches are of one
model). A file with a bad line fails the batch, the lines at fault
in its `errors`. A UTF-8 byte order mark that begins the file (Windows editors write one) is
skipped."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec import json_problem
from clients.switchboard.v1 import batches_pb2 as bpb
from router_service.errors import InvalidRequestError

__all__ = ["ENDPOINTS", "BatchLine", "check_create", "parse_lines"]

# The endpoints a batch runs.
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses")
_MAX_ERRORS = 100  # errors reported at most: enough to fix a file, bounded whatever it holds
_MAX_CUSTOM_ID = 512


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch."""

    number: int  # its line in the input file, from 1
    custom_id: str
    body: dict[str, Any]


def parse_lines(
    content: bytes, endpoint: str, max_lines: int
) -> tuple[list[BatchLine], list[bpb.BatchError]]:
    """The file's requests, or what is wrong with it (then no request)."""
    lines: list[BatchLine] = []
    errors: list[bpb.BatchError] = []
    seen: set[str] = set()
    # A Windows editor's UTF-8 byte order mark: the file's, not its first line's (one further
    # on is inside a line, and that line is not JSON).
    content = content.removeprefix(codecs.BOM_UTF8)
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue  # a blank line (the last newline's) is no request
        line, problem = _parse(raw, number, endpoint, seen)
        if problem is not None:
            errors.append(problem)
        elif line is not None:
            lines.append(line)
        if len(errors) >= _MAX_ERRORS:
            break
    if not errors and not lines:
        errors.append(bpb.BatchError(code="empty_file", message="The input file has no lines."))
    errors += _other_models(lines)[: _MAX_ERRORS - len(errors)]
    if len(lines) > max_lines:
        errors.append(
            bpb.BatchError(
                code="too_many_lines",
                message=f"The input file has {len(lines)} lines; a batch takes at most "
                f"{max_lines} (batches.max_lines).",
            )
        )
    return ([] if errors else lines), errors


def _other_models(lines: list[BatchLine]) -> list[bpb.BatchError]:
    """The lines asking for another model than the first line naming one does: a batch is of
    one model, as OpenAI's are (a line naming none fails alone as it runs)."""
    named = [(line, m) for line in lines if isinstance(m := line.body.get("model"), str)]
    if not named:
        return []
    first = named[0][1]
    return [
        bpb.BatchError(
            code="mismatched_model",
            message=f"This line asks for model {model!r}, another than the batch's {first!r} "
            "(its first line's): every line of a batch must ask for the same model.",
            param="body.model",
            line=line.number,
        )
        for line, model in named
        if model != first
    ]


def _parse(
    raw: bytes, number: int, endpoint: str, seen: set[str]
) -> tuple[BatchLine | None, bpb.BatchError | None]:
    def error(code: str, message: str, param: str = "") -> tuple[None, bpb.BatchError]:
        return None, bpb.BatchError(code=code, message=message, param=param, line=number)

    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return error("invalid_json_line", f"This line is not valid JSON: {json_problem(raw, exc)}")
    if not isinstance(value, dict):
        return error("invalid_json_line", "This line is not a JSON object.")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not 0 < len(custom_id) <= _MAX_CUSTOM_ID:
        return error(
            "invalid_custom_id",
            f"`custom_id` must be a string of 1 to {_MAX_CUSTOM_ID} characters.",
            "custom_id",
        )
    if custom_id in seen:
        return error(
            "duplicate_custom_id",
            f"The custom_id {custom_id!r} is used by an earlier line: each must be unique.",
            "custom_id",
        )
    seen.add(custom_id)
    if value.get("method") != "POST":
        return error("invalid_method", "`method` must be 'POST'.", "method")
    if value.get("url") != endpoint:
        return error(
            "invalid_url",
            f"`url` must be the batch's endpoint, {endpoint!r}.",
            "url",
        )
    body = value.get("body")
    if not isinstance(body, dict):
        return error("invalid_body", "`body` must be a JSON object.", "body")
    if body.get("stream") not in (None, False):  # as OpenAI's validation: whatever the endpoint
        return error(
            "unsupported_value",
            "A batch line is answered whole, into the output file: `stream` must be false.",
            "body.stream",
        )
    return BatchLine(number, custom_id, body), None


def check_create(request: bpb.CreateBatchRequest) -> None:
    """Refuse a batch's create asking what no batch runs (its file is checked after)."""
    if request.endpoint not in ENDPOINTS:
        raise InvalidRequestError(
            f"Invalid endpoint {request.endpoint!r}: a batch runs one of {', '.join(ENDPOINTS)}.",
            param="endpoint",
            code="invalid_endpoint",
        )
    if request.completion_window != "24h":
        raise InvalidRequestError("`completion_window` must be '24h'.", param="completion_window")
