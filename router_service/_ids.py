"""The ids callers name things by (conversations, responses, batches, calls, keys), checked
before any lookup: an empty or oversized one is a malformed argument naming its field, never
a NOT_FOUND. The methods that act on what the router made (cancelling or resuming a background
response, hanging up a WebRTC call: `looked_up_id`) answer an oversized id as OpenAI answers
an id it never made, NOT_FOUND (404); an empty one is still malformed. Light on purpose: the
admin and realtime methods check ids without loading the responses package
(tests/router_service/server/test_idle_imports.py)."""

from __future__ import annotations

from collections.abc import Callable

from router_service.errors import InvalidRequestError, SwitchboardError

__all__ = ["MAX_ID_BYTES", "checked_id", "looked_up_id"]

MAX_ID_BYTES = 128  # ids name things, they do not carry data (and errors repeat them)


def checked_id(value: str, param: str, what: str = "conversation") -> str:
    """`value`, an id of 1 to `MAX_ID_BYTES` bytes; else INVALID_ARGUMENT naming `param`."""
    if not value or len(value.encode()) > MAX_ID_BYTES:
        raise InvalidRequestError(
            f"`{param}` must be a {what} id of 1 to {MAX_ID_BYTES} bytes.", param=param
        )
    return value


def looked_up_id(
    value: str, param: str, what: str, missing: Callable[[str], SwitchboardError]
) -> str:
    """`value`, the id of something the router made: empty, INVALID_ARGUMENT naming `param`;
    longer than any such id, `missing(shown)` (its NOT_FOUND), `shown` the id's first
    `MAX_ID_BYTES` bytes and "…" (errors repeat ids, not kilobytes of one)."""
    if len(value.encode()) > MAX_ID_BYTES:
        raise missing(value.encode()[:MAX_ID_BYTES].decode(errors="ignore") + "…")
    return checked_id(value, param, what)
