"""AWS event stream framing (`application/vnd.amazon.eventstream`): what Bedrock's
ConverseStream answers with, one binary message per event. The one implementation of it: the
Bedrock adapter decodes with it, the fake upstream encodes with it.

Followed: the message format of the AWS SDKs' event stream coding
(https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream
and https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html):

    prelude   total length (4 bytes, big-endian) | headers length (4) | prelude CRC32 (4)
    headers   name length (1) | name (UTF-8) | value type (1) | value ...
    payload   total length - headers length - 16 bytes
    trailer   message CRC32 (4), over everything before it, prelude included

Header value types: 0 true, 1 false, 2 byte, 3 short, 4 integer, 5 long, 6 byte array and
7 string (2-byte length first), 8 timestamp (ms since the epoch, 8 bytes), 9 UUID (16 bytes).

The decoder is incremental (`feed` whatever the connection delivered, `close` at its end) and
never waits on a lie: the prelude's CRC is checked before its lengths are believed, lengths are
bounded (botocore's limits: 128 KiB of headers, 16 MiB of payload), and bytes left over when the
stream ends are an error, as is a CRC that does not match.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "EventStreamDecoder",
    "EventStreamError",
    "EventTooLarge",
    "HeaderValue",
    "Message",
    "encode_message",
]

HeaderValue = bool | int | bytes | str | uuid.UUID
_PRELUDE = struct.Struct(">III")  # total length, headers length, prelude CRC
_PRELUDE_BYTES = _PRELUDE.size
_CRC_BYTES = 4
_MAX_HEADERS = 128 * 1024
_MAX_PAYLOAD = 16 * 1024 * 1024
_INTEGERS = {2: struct.Struct(">b"), 3: struct.Struct(">h"), 4: struct.Struct(">i")}
_LONG = struct.Struct(">q")  # type 5 (long) and 8 (timestamp)
_LENGTH = struct.Struct(">H")
_STRING = 7


class EventStreamError(ValueError):
    """The bytes are not a well-formed event stream (bad CRC, impossible length, cut short)."""


class EventTooLarge(EventStreamError):
    """A well-formed message whose payload is past the decoder's `max_payload` (a reader's own
    bound, below the format's 16 MiB): refused by its prelude, before it is held."""


@dataclass(frozen=True, slots=True)
class Message:
    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str:
        """A header's value as text ("" when absent)."""
        value = self.headers.get(name, "")
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One message with string headers (all Bedrock sends)."""
    encoded = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + bytes([_STRING])
        encoded += _LENGTH.pack(len(raw_value)) + raw_value
    total = _PRELUDE_BYTES + len(encoded) + len(payload) + _CRC_BYTES
    lengths = struct.pack(">II", total, len(encoded))
    message = lengths + struct.pack(">I", zlib.crc32(lengths)) + bytes(encoded) + payload
    return message + struct.pack(">I", zlib.crc32(message))


class EventStreamDecoder:
    """Incremental: `feed` each received chunk (the messages it completes come out), `close`
    when the stream ends."""

    __slots__ = ("_buffer", "max_payload")

    def __init__(self, max_payload: int = _MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self.max_payload = min(max_payload, _MAX_PAYLOAD)  # the most one message may carry

    def feed(self, chunk: bytes) -> Iterator[Message]:
        """The messages `chunk` completes, one by one: those before a broken one come out
        before its error is raised. Iterate it to the end (or to its error)."""
        self._buffer += chunk
        while len(self._buffer) >= _PRELUDE_BYTES:
            total = self._checked_prelude()
            if len(self._buffer) < total:
                return
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            yield _message(frame)

    def close(self) -> None:
        """The stream's end: a message begun and not finished is an error."""
        if self._buffer:
            left = len(self._buffer)
            self._buffer.clear()
            raise EventStreamError(f"the stream ended inside a message ({left} bytes of it)")

    def _checked_prelude(self) -> int:
        total, headers, crc = _PRELUDE.unpack_from(self._buffer)
        if zlib.crc32(memoryview(self._buffer)[:8]) != crc:
            raise EventStreamError("prelude CRC mismatch")
        payload = total - headers - _PRELUDE_BYTES - _CRC_BYTES
        if headers > _MAX_HEADERS or payload < 0 or payload > _MAX_PAYLOAD:
            raise EventStreamError(f"impossible message lengths (total {total}, headers {headers})")
        if payload > self.max_payload:
            raise EventTooLarge(f"a message of {payload} bytes")
        return int(total)


def _message(frame: bytes) -> Message:
    (crc,) = struct.unpack_from(">I", frame, len(frame) - _CRC_BYTES)
    if zlib.crc32(memoryview(frame)[:-_CRC_BYTES]) != crc:
        raise EventStreamError("message CRC mismatch")
    _, headers_length, _ = _PRELUDE.unpack_from(frame)
    end = _PRELUDE_BYTES + headers_length
    headers = _headers(frame[_PRELUDE_BYTES:end])
    return Message(headers, frame[end:-_CRC_BYTES])


def _headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    at = 0
    try:
        while at < len(raw):
            size = raw[at]
            name = raw[at + 1 : at + 1 + size].decode("utf-8")
            at += 1 + size
            headers[name], at = _value(raw, raw[at], at + 1)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers: {exc}") from exc
    return headers


def _value(raw: bytes, kind: int, at: int) -> tuple[HeaderValue, int]:
    """A header value of type `kind` starting at `at`, and where the next header starts."""
    if kind in (0, 1):
        return kind == 0, at
    if kind in _INTEGERS:
        codec = _INTEGERS[kind]
        return int(codec.unpack_from(raw, at)[0]), at + codec.size
    if kind in (5, 8):
        return int(_LONG.unpack_from(raw, at)[0]), at + _LONG.size
    if kind in (6, _STRING):
        (length,) = _LENGTH.unpack_from(raw, at)
        start = at + _LENGTH.size
        value = raw[start : start + length]
        if len(value) != length:
            raise EventStreamError("a header value runs past the headers")
        return (value.decode("utf-8") if kind == _STRING else value), start + length
    if kind == 9:
        value = raw[at : at + 16]
        if len(value) != 16:
            raise EventStreamError("a UUID header runs past the headers")
        return uuid.UUID(bytes=value), at + 16
    raise EventStreamError(f"unknown header value type {kind}")
