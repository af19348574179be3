"""One text of a request or an answer that a guardrail reads and may replace (`TextSlot`)."""

from __future__ import annotations

from typing import Any

__all__ = ["TextSlot", "Where"]

Where = tuple[str | int, ...]


class TextSlot:
    """One text: `owner.<key>` (a message's field), or `owner[key]` with `item` (a repeated
    string, a map's or a parsed JSON object's value).

    `rewritable` False: a name the call refers to elsewhere (a tool's, a tool call's, the
    function `tool_choice` names, a message's `name`): a rewritten one would break the call (a
    tool call naming no tool, names the upstream refuses as `[REDACTED:…]` has `[`, `:`), so a
    redact rule's find there blocks the call as a block rule's does."""

    __slots__ = ("_item", "_key", "_owner", "changed", "rewritable", "where")

    def __init__(
        self,
        owner: Any,
        key: str | int,
        where: Where,
        *,
        item: bool = False,
        rewritable: bool = True,
    ) -> None:
        self._owner = owner
        self._key = key
        self._item = item or isinstance(key, int)
        self.where = where
        self.changed = False
        self.rewritable = rewritable

    @property
    def text(self) -> str:
        if self._item:
            return str(self._owner[self._key])
        return str(getattr(self._owner, str(self._key)))

    def replace(self, text: str) -> None:
        if self._item:
            self._owner[self._key] = text
        else:
            setattr(self._owner, str(self._key), text)
        self.changed = True

    @property
    def path(self) -> str:
        """`messages[2].content` from `("messages", 2, "content")`."""
        out = ""
        for part in self.where:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out
