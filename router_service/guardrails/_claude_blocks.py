"""The readable strings of a Claude deployment's own blocks in an answer, for the answer-side
rules: what `clients.codec.anthropic` carries opaque in the chat representation (a unary
message's CONTENT_KEY; a stream delta's BLOCK_KEY, TEXT_BLOCK_KEY, CITATION_KEY). A server
tool's call (a search's query, a fetch's URL), its result (titles, URLs, a fetched page's
text, a code filter's output), a text block's text and its citations' `cited_text` and titles
reach the caller as any answer text does, so the same rules screen them.

Not screened: the blocks' structure (`type`, ids, tool names: as a tool call's name is not),
and their `encrypted_*` fields and signatures (opaque to anyone but Claude: nothing readable).

A block rule's find withholds the choice as a text's does. A redact rule's find drops the
blocks rather than rewriting them: Claude gets them back on the next turn, and a result or
citation rewritten would no longer agree with its encrypted content or index; the answer is
then the message's own text, screened (unary: all its blocks go; a stream: the block with the
find and every later one of its choice, as a block already sent cannot be taken back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from clients.codec.anthropic import BLOCK_KEY, CITATION_KEY, CONTENT_KEY, TEXT_BLOCK_KEY
from clients.switchboard.v1 import chat_pb2
from router_service.errors import GuardrailBlockedError
from router_service.guardrails._texts import TextSlot, json_object, json_strings

if TYPE_CHECKING:
    from router_service.guardrails._answers import AnswerGuard

__all__ = ["StreamBlocks", "claude_block_texts"]

# A stream delta's keys that carry Claude's blocks.
_STREAM_KEYS = (BLOCK_KEY, TEXT_BLOCK_KEY, CITATION_KEY)
# The keys of a block's structure: what names or links it, not what it says.
_STRUCTURE_KEYS = frozenset(("type", "id", "tool_use_id", "name", "media_type", "signature"))


def _readable(value: Any, where: tuple[str | int, ...]) -> Iterator[TextSlot]:
    for slot in json_strings(value, where, None):
        key = slot.where[-1]
        if isinstance(key, str) and (key in _STRUCTURE_KEYS or key.startswith("encrypted_")):
            continue
        yield slot


def claude_block_texts(message: chat_pb2.ChatMessage, field: str) -> Iterator[TextSlot]:
    """The readable strings of the Claude blocks a unary answer's message carries. The slots
    are a copy's: a changed one says the blocks are to be dropped (`_answers`), never written."""
    if CONTENT_KEY not in message.extra_json:
        return
    extra = json_object(message.extra_json)
    blocks = extra.get(CONTENT_KEY) if extra is not None else None
    if blocks is not None:
        yield from _readable(blocks, (field, CONTENT_KEY))


class StreamBlocks:
    """Claude's blocks in one stream's deltas, screened as each passes (whole, on its chunk)."""

    __slots__ = ("_dropping", "_guard")

    def __init__(self, guard: AnswerGuard) -> None:
        self._guard = guard
        self._dropping: set[int] = set()  # choices whose later blocks are dropped

    def screen(self, index: int, extra: dict[str, Any]) -> tuple[str, str] | None:
        """Screen the blocks in a delta's unmodelled keys `extra` of choice `index`; dropped
        from it (in place) after a redact rule's find. (rule, detector) of a block rule's find:
        the choice is to be withheld."""
        present = {key: extra[key] for key in _STREAM_KEYS if key in extra}
        if not present:
            return None
        slots = list(_readable(present, (f"choices[{index}].delta",)))
        try:
            self._guard.screen(slots)
        except GuardrailBlockedError as exc:
            return exc.guardrail, exc.detector
        if any(slot.changed for slot in slots):
            self._dropping.add(index)
        if index in self._dropping:
            for key in present:
                del extra[key]
        return None
