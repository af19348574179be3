"""Reading a JSON request body within the size limit, decompressed when it says it is
(`Content-Encoding: gzip` or `deflate`: clients compress long conversations)."""

from __future__ import annotations

import asyncio
import codecs
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from starlette.requests import ClientDisconnect

from clients import InvalidRequestError
from clients.codec import json_problem
from router_service._zlib_window import EITHER_HEADER, zlib_window

from ._errors import EdgeError, client_closed

__all__ = ["parse_request", "read_json_object", "without_bom"]

T = TypeVar("T")

# The Content-Encodings a body may come in (zlib's: `zlib_window`).
_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_PIECE = 4096  # compressed bytes per step
# What a body inflates to on the event loop (well under a millisecond); the rest in a thread.
_INLINE = 256 * 1024
# The gzip members inflated on the event loop: each costs a step of its own, whatever it holds
# (thousands of empty ones held the loop for half a second, inflating to nothing).
_INLINE_MEMBERS = 8


def _too_large(limit: int) -> EdgeError:
    return EdgeError(
        413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `limit` bytes.

    A declared Content-Length is checked before anything is read; a chunked body is counted
    while it arrives and never held beyond the limit. A client gone mid-upload is a 499, an
    answer nobody reads, not an error of the edge.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise EdgeError(400, "Invalid Content-Length header.", code="invalid_header") from None
        if length > limit:
            raise _too_large(limit)
    buffer = bytearray()
    try:
        async for part in request.stream():
            if len(buffer) + len(part) > limit:
                raise _too_large(limit)
            buffer += part
    except ClientDisconnect:
        raise client_closed() from None
    encodings = request.headers.getlist("content-encoding")
    return await _decoded(bytes(buffer), encodings, limit) if encodings else bytes(buffer)


async def _decoded(raw: bytes, encodings: list[str], limit: int) -> bytes:
    """The body as sent before its `encodings` (the `Content-Encoding` headers: a list, in the
    order applied, undone last first), itself within `limit` (a few bytes of gzip may stand
    for gigabytes: never inflated past the limit). The first `_INLINE` bytes of each (and
    `_INLINE_MEMBERS` gzip members at most) are inflated on the event loop (most bodies: all of
    them); the rest in a worker thread, so a body of megabytes holds no other request up (zlib
    lets go of the GIL while it inflates)."""
    codings = [coding.strip().lower() for header in encodings for coding in header.split(",")]
    codings = [coding for coding in codings if coding not in ("", "identity")]
    unknown = [coding for coding in codings if coding not in _ENCODINGS]
    if unknown:
        message = f"Content-Encoding {unknown[0]!r} is not supported: send gzip, deflate or none."
        raise EdgeError(415, message, code="unsupported_content_encoding")
    for name in reversed(codings):
        inflation = _Inflation(memoryview(raw), name, limit)
        if not inflation.run(_INLINE, _INLINE_MEMBERS):
            await asyncio.to_thread(inflation.run, limit + 1)
        raw = bytes(inflation.body)
    return raw


class _Inflation:
    """Every gzip member (RFC 1952: one after another) or the zlib stream in `raw`, fed in small
    pieces and inflated in steps: neither the output past `limit` nor each member's leftover
    input is ever held whole (which a body of many tiny members would copy again for each)."""

    def __init__(self, raw: memoryview, name: str, limit: int) -> None:
        self.raw, self.name, self.limit = raw, name, limit
        self.body = bytearray()
        self.inflater = zlib.decompressobj(zlib_window(name, bytes(raw[:2])))
        self.fed = False  # `inflater` was given input and has not ended
        self.at = 0  # where the next piece of `raw` starts
        self.pending: bytes | memoryview = b""  # what `inflater` has yet to read
        self.full = False  # its last step filled the room it had: it may hold more output
        self.ended = 0  # the members inflated whole

    def run(self, until: int, members: int = 0) -> bool:
        """Inflate on until the body holds `until` bytes or, `members` given, that many members
        ended (False: more may follow), or the whole of `raw` (True); a 413 past the limit, a
        400 for a corrupt or truncated body."""
        while self.pending or self.at < len(self.raw) or self.full:
            room = min(until, self.limit + 1) - len(self.body)
            if room <= 0 or (members and self.ended >= members):
                return False
            if not self.pending and not self.full:
                self.pending, self.at = self.raw[self.at : self.at + _PIECE], self.at + _PIECE
            self.fed = True
            try:
                out = self.inflater.decompress(self.pending, room)
            except zlib.error as exc:
                message = f"The {self.name} body is corrupt: {exc}."
                raise EdgeError(400, message, code="invalid_body") from None
            self.body += out
            if len(self.body) > self.limit:
                raise _too_large(self.limit)
            self.pending, self.full = self.inflater.unconsumed_tail, len(out) == room
            if self.inflater.eof:  # the next member, if anything follows
                self.pending, self.full, self.fed = self.inflater.unused_data, False, False
                self.ended += 1
                self.inflater = zlib.decompressobj(EITHER_HEADER)
        if self.fed or not self.raw:
            raise EdgeError(400, f"The {self.name} body is truncated.", code="invalid_body")
        return True


def without_bom(raw: bytes) -> bytes:
    """`raw` without a UTF-8 byte order mark at its start: RFC 8259 lets a parser ignore one
    (8.1), as Python's `json.loads` of bytes, Express and the batch files' lines do (Windows
    tools write it: Windows PowerShell's `Out-File -Encoding utf8`, Notepad); orjson refuses
    it. Only at the start: one inside the text is still invalid JSON."""
    return raw.removeprefix(codecs.BOM_UTF8)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body parsed as a JSON object, or a 400/413 `EdgeError`."""
    raw = without_bom(await read_body(request, limit))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EdgeError(
            400, f"Invalid JSON body: {json_problem(raw, exc)}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        kind = _json_kind(body)
        raise EdgeError(
            400, f"The request body must be a JSON object, not {kind}.", code="invalid_json"
        )
    return body


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def parse_request(parse: Callable[[dict[str, Any]], T], body: dict[str, Any]) -> T:
    """Run a codec parser on the caller's body; its complaints are the caller's fault (400).

    Only here: the codec raises the same exception for a malformed router answer, which is not.
    """
    try:
        return parse(body)
    except InvalidRequestError as exc:
        # The code the router gives the same error (`InvalidRequestError.to_details()`).
        raise EdgeError(400, exc.message, code="invalid_argument", param=exc.param) from exc
