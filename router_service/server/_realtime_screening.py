"""The request-side guardrails over a Realtime caller's events (`RealtimeServicer`'s relay),
and the check of a `session.update`'s `tool_choice` (`SessionTools`): only events that may carry
text are parsed (an audio append's megabyte of base64 is not)."""

from __future__ import annotations

import json
from typing import NamedTuple

import orjson

from router_service.auth import current_caller
from router_service.guardrails import event_texts
from router_service.runtime import Runtime
from router_service.server._realtime_tools import SessionTools

__all__ = ["Screened", "event_id_of", "screened"]


# The client events that may carry text a guardrail reads (a cheap test before parsing).
_TEXT_EVENTS = frozenset(("session.update", "conversation.item.create", "response.create"))
_TEXT_EVENT_SIZES = frozenset(len(kind) for kind in _TEXT_EVENTS)
# Without guardrails, only a `session.update` is read (`SessionTools`).
_UPDATE_EVENTS = (frozenset(("session.update",)), frozenset((len("session.update"),)))


class Screened(NamedTuple):
    """A caller's event as it goes upstream, or the `error` event refusing it (`refusal`):
    then nothing goes upstream and the session goes on."""

    event_json: str
    refusal: str | None = None


def screened(runtime: Runtime, model: str, event_json: str, tools: SessionTools) -> Screened:
    """A caller's event, through the request-side guardrails when it carries text; a
    `session.update` forcing a tool call without tools refused (`SessionTools`). Only a text
    event is parsed, and without guardrails only a `session.update`."""
    guardrails = runtime.guardrails
    kinds, sizes = (_TEXT_EVENTS, _TEXT_EVENT_SIZES) if guardrails else _UPDATE_EVENTS
    if not _names_a_kind(event_json, kinds, sizes):
        return Screened(event_json)
    try:
        event, lenient = orjson.loads(event_json), False
    except orjson.JSONDecodeError:
        # orjson refuses what other parsers (the upstream's) may read: NaN, 1e999, a lone
        # surrogate's escape. Read as Python's json reads them, never passed on unscreened.
        try:
            event, lenient = json.loads(event_json), True
        except ValueError:
            return Screened(event_json)  # the upstream answers it with its own error event
    slots = list(event_texts(event)) if guardrails else []
    if slots:  # screened first: a block ends the session, whatever else is wrong with it
        caller = current_caller()
        client = "" if caller is None or caller.anonymous else caller.name
        guardrails.screen(slots, client, model)
    refusal = tools.refusal(event)
    if refusal is not None or not any(s.changed for s in slots):
        return Screened(event_json, refusal)
    return Screened(json.dumps(event) if lenient else orjson.dumps(event).decode())


def _may_carry_text(event_json: str) -> bool:
    """Whether `event_json` may be a text event (`_names_a_kind`)."""
    return _names_a_kind(event_json, _TEXT_EVENTS, _TEXT_EVENT_SIZES)


def _names_a_kind(event_json: str, kinds: frozenset[str], sizes: frozenset[int]) -> bool:
    """Whether `event_json` has a string that is one of `kinds` (of `sizes`): the test before
    parsing each event (an audio append's megabyte of base64 too, many a second), so by `find`
    (memchr) alone, never a substring search over the whole event."""
    # An escape (`"conversation\\u002eitem.create"`, `\\"`) is read whole; without one, every
    # `"` opens or closes a string: base64 is skipped in one jump.
    if "\\" in event_json:
        return True
    end = -1
    while (start := event_json.find('"', end + 1)) >= 0:
        end = event_json.find('"', start + 1)
        if end < 0:  # no JSON: the parser says so
            return True
        if end - start - 1 in sizes and event_json[start + 1 : end] in kinds:
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
