"""The texts of OpenAI Realtime API client events (`event_texts`: what the WebSocket relay
screens as the caller sends them) and of a Realtime session config (`session_texts`: an
ephemeral client secret's, a WebRTC call's offer's; screened by the gate before the call is
counted, as a `session.update` carrying it would be)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from router_service.guardrails._texts import _JSON_TEXT_KEYS, TextSlot, json_strings

__all__ = ["event_texts", "session_texts"]


def event_texts(event: Any) -> list[TextSlot]:
    """The texts of a client event: `session.update`'s `session.instructions`,
    `session.tools` and `session.prompt.variables`, `response.create`'s (`response.…`) and the
    items of its `response.input` (an out-of-band response's), and a
    `conversation.item.create`'s item. An item's texts are a Responses API item's
    (`json_strings` of `_JSON_TEXT_KEYS`): a message's text parts, a function call's
    `arguments`, a tool's result (`function_call_output`'s `output`)."""
    if not isinstance(event, dict):
        return []
    kind = event.get("type")
    slots: list[TextSlot] = []
    for name in ("session", "response"):
        body = event.get(name)
        if kind in ("session.update", "response.create") and isinstance(body, dict):
            slots += _config_texts(body, name)
    response = event.get("response")
    if kind == "response.create" and isinstance(response, dict):
        inputs = response.get("input")
        if isinstance(inputs, list):
            slots += json_strings(inputs, ("response", "input"), _JSON_TEXT_KEYS)
    item = event.get("item")
    if kind == "conversation.item.create" and isinstance(item, dict):
        slots += json_strings(item, ("item",), _JSON_TEXT_KEYS)
    return slots


def _config_texts(body: dict[str, Any], name: str) -> Iterator[TextSlot]:
    """A session's (or one response's) configured texts: its `instructions`, its function
    tools, its prompt's variables."""
    if isinstance(body.get("instructions"), str):
        yield TextSlot(body, "instructions", (name, "instructions"), item=True)
    if isinstance(body.get("tools"), list):
        yield from _tool_texts(body["tools"], (name, "tools"))
    if isinstance(body.get("prompt"), dict):
        yield from _variable_texts(body["prompt"], (name, "prompt"))


def _tool_texts(tools: list[Any], where: tuple[str, ...]) -> Iterator[TextSlot]:
    """The texts of function tool definitions, as a chat call's are: a function's `name` (not
    rewritable: the model calls it by that name), its `description`, every string value of its
    `parameters` JSON schema. Other tools (MCP: a server's URL and headers) are not texts."""
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        if isinstance(tool.get("name"), str):
            yield TextSlot(tool, "name", (*where, i, "name"), item=True, rewritable=False)
        if isinstance(tool.get("description"), str):
            yield TextSlot(tool, "description", (*where, i, "description"), item=True)
        yield from json_strings(tool.get("parameters"), (*where, i, "parameters"), None)


def _variable_texts(prompt: dict[str, Any], where: tuple[str, ...]) -> Iterator[TextSlot]:
    """The values of a reusable prompt's `variables` that are text (a string, an `input_text`
    part's `text`): the upstream writes them into the prompt's instructions."""
    variables = prompt.get("variables")
    for name, value in variables.items() if isinstance(variables, dict) else ():
        at = (*where, "variables", name)
        if isinstance(value, str):
            yield TextSlot(variables, name, at, item=True)
        elif isinstance(value, dict) and isinstance(value.get("text"), str):
            yield TextSlot(value, "text", (*at, "text"), item=True)


def session_texts(session_json: str, write: Callable[[str], None]) -> Iterator[TextSlot]:
    """The texts of a session config (JSON; empty: none) as a `session.update`'s; `write` gets
    the config again, compact, when a slot changed (when the next slot is asked for after the
    last, as the screen does). No JSON object: nothing, left to the handler's own checks."""
    try:
        session = orjson.loads(session_json or "{}")
    except orjson.JSONDecodeError:
        return
    slots = event_texts({"type": "session.update", "session": session})
    yield from slots
    if any(slot.changed for slot in slots):
        write(orjson.dumps(session).decode())
