"""What agents such as OpenAI's Codex CLI add to the Responses API: custom (freeform) tools and
their calls, and reasoning items carried from turn to turn (``encrypted_content``).

Custom tools take the chat-completions form OpenAI defines for them: a tool
``{"type": "custom", "custom": {"name", "description", "format"}}``, a call
``{"id", "type": "custom", "custom": {"name", "input"}}`` (a stream delta:
``{"index", "custom": {"input"}}``), ``tool_choice`` ``{"type": "custom", "custom": {"name"}}``;
their output is a tool message, as a function's.

Reasoning items (``{"type": "reasoning", "id", "summary", "encrypted_content"}``) ride on the
chat assistant message they came before, under :data:`REASONING_ITEMS` (a key of ours): a
Responses upstream gets them back as input items (its own encrypted reasoning, which only it
can read), every other upstream never sees them (the router drops them). The answer of a
Responses upstream carries its reasoning items there too, when the caller asked for
:data:`ENCRYPTED` (``include``); the chat body asks with ``include`` (:data:`INCLUDE`).
"""

from __future__ import annotations

from typing import Any

from clients.codec._json import (
    at,
    expect_list,
    expect_object,
    expect_str,
    invalid_value,
    missing,
)

__all__ = [
    "ENCRYPTED",
    "HOSTED_ITEMS",
    "INCLUDE",
    "PRECEDES",
    "REASONING_ITEMS",
    "add_reasoning",
    "closes_reasoning",
    "custom_call",
    "custom_call_item",
    "custom_choice",
    "custom_of",
    "custom_tool",
    "drop_bare_reasoning",
    "joins_reasoning",
    "named",
    "reasoning_items_of",
    "reasoning_output_item",
    "required_strings",
]

REASONING_ITEMS = "reasoning_items"
# OpenAI's hosted tools' items an assistant turn carries (_responses_hosted.py).
HOSTED_ITEMS = "hosted_items"
# A reasoning item of an answer: the index, among the answer's other output items (its message,
# then each call), of the one it came before (a Response's output keeps that order).
PRECEDES = "precedes"
ENCRYPTED = "reasoning.encrypted_content"
INCLUDE = "include"
_FORMATS = ("text", "grammar")
_SYNTAXES = ("lark", "regex")


def named(tool: dict[str, Any], path: str) -> dict[str, Any]:
    """A tool's ``name`` (required) and ``description``, as a function or custom tool has them."""
    if tool.get("name") is None:
        missing(at(path, "name"))
    out: dict[str, Any] = {"name": expect_str(tool["name"], at(path, "name"))}
    if tool.get("description") is not None:
        out["description"] = expect_str(tool["description"], at(path, "description"))
    return out


def required_strings(obj: dict[str, Any], path: str, *keys: str) -> list[str]:
    """The string values of `keys` in an item, each required."""
    for key in keys:
        if obj.get(key) is None:
            missing(at(path, key))
    return [expect_str(obj[key], at(path, key)) for key in keys]


def custom_tool(tool: dict[str, Any], path: str) -> dict[str, Any]:
    """A Responses ``custom`` tool (flat) as its chat-completions form."""
    custom = named(tool, path)
    if tool.get("format") is not None:
        custom["format"] = _format(tool["format"], at(path, "format"))
    return {"type": "custom", "custom": custom}


def _format(value: Any, path: str) -> dict[str, Any]:
    fmt = expect_object(value, path)
    kind = expect_str(fmt.get("type"), at(path, "type"))
    if kind not in _FORMATS:
        invalid_value(at(path, "type"), kind, _FORMATS)
    if kind == "text":
        return {"type": "text"}
    syntax = expect_str(fmt.get("syntax"), at(path, "syntax"))
    if syntax not in _SYNTAXES:
        invalid_value(at(path, "syntax"), syntax, _SYNTAXES)
    definition = expect_str(fmt.get("definition"), at(path, "definition"))
    return {"type": "grammar", "grammar": {"syntax": syntax, "definition": definition}}


def custom_choice(obj: dict[str, Any], path: str) -> dict[str, Any]:
    """``tool_choice`` ``{"type": "custom", "name"}`` in its chat-completions form."""
    return {"type": "custom", "custom": {"name": expect_str(obj.get("name"), at(path, "name"))}}


def custom_call(obj: dict[str, Any], path: str) -> dict[str, Any]:
    """A ``custom_tool_call`` input item as the chat assistant message's tool call."""
    call_id, name, text = required_strings(obj, path, "call_id", "name", "input")
    return {"id": call_id, "type": "custom", "custom": {"name": name, "input": text}}


def custom_of(call: dict[str, Any]) -> dict[str, Any] | None:
    """The ``custom`` object of a chat tool call (or delta) of a custom tool, else None."""
    custom = call.get("custom")
    return custom if isinstance(custom, dict) else None


def custom_call_item(
    item_id: str, call_id: str, name: str, text: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "custom_tool_call",
        "call_id": call_id,
        "name": name,
        "input": text,
        "status": status,
    }


# --- reasoning items -----------------------------------------------------------------------------


def add_reasoning(messages: list[dict[str, Any]], obj: dict[str, Any], path: str) -> None:
    """A ``reasoning`` input item, kept for the assistant turn that follows it (a message, a
    tool call); one without ``encrypted_content`` has nothing an upstream could use (this
    gateway stores none): left out."""
    if obj.get("encrypted_content") is None:
        return
    item = {
        "summary": expect_list(obj.get("summary") or [], at(path, "summary")),
        "encrypted_content": expect_str(obj["encrypted_content"], at(path, "encrypted_content")),
    }
    if obj.get("id") is not None:  # Codex sends none (`store: false`): the upstream needs none
        item = {"id": expect_str(obj["id"], at(path, "id")), **item}
    last = messages[-1] if messages else None
    if last is not None and _bare(last):
        last[REASONING_ITEMS].append(item)
    else:
        messages.append({"role": "assistant", "content": None, REASONING_ITEMS: [item]})


def _bare(message: dict[str, Any]) -> bool:
    """An assistant message of reasoning items alone (so far): no hosted item either."""
    return (
        message["role"] == "assistant"
        and REASONING_ITEMS in message
        and HOSTED_ITEMS not in message
        and message.get("content") is None
        and not message.get("tool_calls")
        and "refusal" not in message
    )


def joins_reasoning(messages: list[dict[str, Any]], message: dict[str, Any]) -> bool:
    """Put an assistant `message` into the reasoning-only turn before it; whether it did."""
    last = messages[-1] if messages else None
    if message["role"] != "assistant" or last is None or not _bare(last):
        return False
    last.update(message)
    return True


def drop_bare_reasoning(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` without reasoning that no assistant turn followed (nothing to ride on)."""
    return [m for m in messages if not _bare(m)]


def reasoning_items_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The reasoning items a chat message (or delta) carries."""
    items = message.get(REASONING_ITEMS)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def closes_reasoning(item: dict[str, Any]) -> bool:
    """Whether a stream's reasoning item is its end (the whole item), not its opening (its id
    alone, nothing of it to show yet)."""
    return "encrypted_content" in item or "summary" in item


def reasoning_output_item(item: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    """An upstream's reasoning item as a Response's output item (its id, summary and
    encrypted content kept)."""
    out = {
        "id": str(item.get("id", "")),
        "type": "reasoning",
        "status": status,
        "summary": item.get("summary") or [],
    }
    if item.get("encrypted_content") is not None:
        out["encrypted_content"] = item["encrypted_content"]
    return out
