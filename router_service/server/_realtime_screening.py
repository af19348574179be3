"""The request-side guardrails over a Realtime caller's events (`RealtimeServicer`'s relay):
only events that may carry text are parsed (an audio append's megabyte of base64 is not)."""

from __future__ import annotations

import json

import orjson

from router_service.auth import current_caller
from router_service.guardrails import event_texts
from router_service.runtime import Runtime

__all__ = ["event_id_of", "screened"]


# The client events that may carry text a guardrail reads (a cheap test before parsing).
_TEXT_EVENTS = frozenset(("session.update", "conversation.item.create", "response.create"))
_TEXT_EVENT_SIZES = frozenset(len(kind) for kind in _TEXT_EVENTS)


def screened(runtime: Runtime, model: str, event_json: str) -> str:
    """A caller's event, through the request-side guardrails when it carries text."""
    guardrails = runtime.guardrails
    if not guardrails or not _may_carry_text(event_json):
        return event_json
    try:
        event, lenient = orjson.loads(event_json), False
    except orjson.JSONDecodeError:
        # orjson refuses what other parsers (the upstream's) may read: NaN, 1e999, a lone
        # surrogate's escape. Read as Python's json reads them, never passed on unscreened.
        try:
            event, lenient = json.loads(event_json), True
        except ValueError:
            return event_json  # the upstream answers it with its own error event
    slots = list(event_texts(event))
    if not slots:
        return event_json
    caller = current_caller()
    client = "" if caller is None or caller.anonymous else caller.name
    guardrails.screen(slots, client, model)
    if not any(s.changed for s in slots):
        return event_json
    return json.dumps(event) if lenient else orjson.dumps(event).decode()


def _may_carry_text(event_json: str) -> bool:
    """Whether `event_json` has a string that is a text event's type: the test before parsing
    each event (an audio append's megabyte of base64 too, many a second), so by `find` (memchr)
    alone, never a substring search over the whole event."""
    # An escape (`"conversation\\u002eitem.create"`, `\\"`) is read whole; without one, every
    # `"` opens or closes a string: base64 is skipped in one jump.
    if "\\" in event_json:
        return True
    end = -1
    while (start := event_json.find('"', end + 1)) >= 0:
        end = event_json.find('"', start + 1)
        if end < 0:  # no JSON: the parser says so
            return True
        if end - start - 1 in _TEXT_EVENT_SIZES and event_json[start + 1 : end] in _TEXT_EVENTS:
            return True
    return False


def event_id_of(event_json: str) -> str | None:
    """The `event_id` a caller gave its event, if any (read only for an event refused)."""
    try:
        event = orjson.loads(event_json)
    except orjson.JSONDecodeError:
        return None
    given = event.get("event_id") if isinstance(event, dict) else None
    return given if isinstance(given, str) else None
