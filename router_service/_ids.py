"""The ids callers name things by (conversations, responses, batches, calls, keys), checked
before any lookup: an empty or oversized one is a malformed argument naming its field, never
a NOT_FOUND. Light on purpose: the admin and realtime methods check ids without loading the
responses package (tests/router_service/server/test_idle_imports.py)."""

from __future__ import annotations

from router_service.errors import InvalidRequestError

__all__ = ["MAX_ID_BYTES", "checked_id"]

MAX_ID_BYTES = 128  # ids name things, they do not carry data (and errors repeat them)


def checked_id(value: str, param: str, what: str = "conversation") -> str:
    """`value`, an id of 1 to `MAX_ID_BYTES` bytes; else INVALID_ARGUMENT naming `param`."""
    if not value or len(value.encode()) > MAX_ID_BYTES:
        raise InvalidRequestError(
            f"`{param}` must be a {what} id of 1 to {MAX_ID_BYTES} bytes.", param=param
        )
    return value
