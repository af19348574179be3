"""The message size limits a ``LocalChannel`` call keeps, said in grpc's words: a request over
its caller's `grpc.max_send_message_length` or the router's `grpc.max_receive_message_length`,
an answer over its caller's `grpc.max_receive_message_length`."""

from __future__ import annotations

from typing import Any

from clients._limits import MAX_METADATA_BYTES

__all__ = [
    "answer_refused",
    "metadata_refused",
    "request_refused",
    "send_refused",
    "trailers_refused",
]

# The router's limit on a call's metadata (`MAX_METADATA_BYTES`: its soft and hard limit),
# counted as HPACK counts it: each pair's key and value and 32 bytes; grpc's own headers
# (`:path`, `user-agent`, `te`, ...) take about 540 bytes of it on a router call.
_METADATA_HARD_LIMIT = MAX_METADATA_BYTES
_GRPC_OWN_HEADERS_BYTES = 540
# What grpc counts of an answer's trailers besides those its handler set: its `grpc-status`
# and `grpc-message` (without its details) and more, measured against grpc's own port.
_GRPC_OWN_TRAILERS_BYTES = 191


def send_refused(size: int, limit: float) -> str | None:
    """The details of a request (or a message written to a call) over its caller's own limit,
    refused before any server sees it (None: within it)."""
    if size <= limit:
        return None
    return f"CLIENT: Sent message larger than max ({size} vs. {int(limit)})"


def metadata_refused(metadata: tuple[tuple[str, Any], ...]) -> str | None:
    """The details of a call whose metadata is over grpc's hard limit, refused before any
    handler sees it (None: within it)."""
    size = _GRPC_OWN_HEADERS_BYTES + _size(metadata)
    if size <= _METADATA_HARD_LIMIT:
        return None
    return f"received metadata size exceeds hard limit ({size} vs. {_METADATA_HARD_LIMIT})"


def request_refused(size: int, limit: int) -> str | None:
    """The details of a request over the server's limit (None: within it)."""
    if size <= limit:
        return None
    return f"SERVER: Received message larger than max ({size} vs. {limit})"


def answer_refused(answer: Any, limit: float) -> str | None:
    """The details of an answer (its bytes) over its caller's limit (None: within it)."""
    size = len(answer) if isinstance(answer, bytes) else 0
    if size <= limit:
        return None
    return f"Stream removed (CLIENT: Received message larger than max ({size} vs. {int(limit)}))"


def trailers_refused(
    trailing: tuple[tuple[str, Any], ...], details: str, limit: float
) -> str | None:
    """The details of an answer whose trailers are over its caller's metadata limit (grpc's
    `grpc.absolute_max_metadata_size`, `MAX_METADATA_BYTES` on our channels), which grpc
    removes the stream for (None: within it), counted as grpc counts them: with its own
    (`grpc-status`, `grpc-message`: `details` percent-encoded), a `-bin` value as sent between
    two grpc peers (its bytes and one, unencoded)."""
    if not trailing and _GRPC_OWN_TRAILERS_BYTES + 12 * len(details) <= limit:
        return None  # most answers (UTF-8: 4 bytes a character at most, each 3 encoded)
    size = _GRPC_OWN_TRAILERS_BYTES + _percent_encoded(details)
    for key, value in trailing:
        if type(value) is str:
            size += len(key) + 32 + len(value)
        elif isinstance(value, bytes):
            size += len(key) + 32 + len(value) + 1
    if size <= limit:
        return None
    return f"Stream removed (received metadata size exceeds hard limit ({size} vs. {int(limit)}))"


def _percent_encoded(details: str) -> int:
    """The length of `details` in `grpc-message`: a byte outside printable ASCII, or `%`, as
    three (`%XX`)."""
    if details.isascii() and details.isprintable() and "%" not in details:
        return len(details)
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in details.encode())


def _size(metadata: tuple[tuple[str, Any], ...]) -> int:
    """Metadata's size as HPACK counts it: each pair's key and value and 32 bytes."""
    size = 0
    for key, value in metadata:
        if type(value) is str:
            size += len(key) + 32 + len(value)
        elif isinstance(value, bytes):  # a `-bin` key's value goes base64-encoded
            size += len(key) + 32 + -(-len(value) // 3) * 4
        # Anything else is an in-process object (the caller's live span) no wire carries.
    return size
