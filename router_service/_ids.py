"""The ids callers name things by (conversations, responses, items, files, batches, calls,
keys), checked before any lookup, by one rule. An id given to make something (StoreResponse's
`response.id`, a conversation item's `id`: `checked_id`) is a malformed argument naming its
field when empty or oversized. An id given to find something the router keeps (load, update,
delete or cancel a stored response, a conversation or its items, a file, a batch, an issued
client key; resume a background response; hang up a WebRTC call: `looked_up_id`) is answered
as OpenAI answers an id it does not have, whatever its length: an oversized one is the lookup's
own NOT_FOUND (404), which repeats its first bytes only (`shown_id`); an empty one is still
malformed. Light on purpose: the admin and realtime methods, and the HTTP edge (which repeats
ids in its own 404s), check ids without loading the responses package
(tests/router_service/server/test_idle_imports.py)."""

from __future__ import annotations

from collections.abc import Callable

from router_service.errors import InvalidRequestError, SwitchboardError

__all__ = ["MAX_ID_BYTES", "checked_id", "looked_up_id", "shown_id"]

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
    """`value`, the id of something the router keeps: empty, INVALID_ARGUMENT naming `param`;
    longer than any such id, `missing(shown_id(value))` (the lookup's NOT_FOUND)."""
    if len(value.encode()) > MAX_ID_BYTES:
        raise missing(shown_id(value))
    return checked_id(value, param, what)


def shown_id(value: str, most: int = MAX_ID_BYTES) -> str:
    """`value` as an error, a log line or a span repeats it: whole up to `most` bytes, else its
    first `most` bytes (whole characters only) and "…" (an attacker-sized id, or a path holding
    one, is not echoed whole: errors repeat ids, not kilobytes of one)."""
    data = value.encode()
    if len(data) <= most:
        return value
    return data[:most].decode(errors="ignore") + "…"
