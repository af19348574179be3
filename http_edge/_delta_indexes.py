"""The running `index` of the list entries a chat stream's deltas carry beyond OpenAI's own
(`reasoning_items`, `hosted_events`, `annotations`, `thinking_blocks`…), as the edge streams them.

The openai SDK's stream helper (`client.chat.completions.stream`, `ChatCompletionStreamState`)
adds each delta to its snapshot (openai/lib/streaming/_deltas.py `accumulate_delta`): a list of
objects met again is merged entry by entry at each entry's `index` (strings joined, numbers
added), and an entry without one is an error. Ours are whole entries, each said once: the edge
numbers each, per choice and key, by its place in the list the stream adds up to, so that the
helper appends it (never merging two) and its snapshot lists them all, as they came. Entries
that already have an `index` (tool calls, an upstream's own, such as OpenRouter's
`reasoning_details`) are left as they are: the upstream's pieces of one entry, to merge.

A Claude answer's server tool blocks come one object a delta (`anthropic_block`,
`anthropic_text_block`, `anthropic_citation`: clients/codec/anthropic/_server_tools.py): an
object met again the helper merges key by key (strings joined, lists of entries without an
`index` an error), so a web search's call and its result would become one block, and a second
result list would end the stream ("Expected list delta entry to have an `index` key"). The
edge sends each as a one-entry list under the plural key (`anthropic_blocks`…), as Claude's
thinking goes (`thinking_blocks`), numbered as the others: the helper lists them, whole.
"""

from __future__ import annotations

from typing import Any

from clients.codec.anthropic import BLOCK_KEY, CITATION_KEY, TEXT_BLOCK_KEY

__all__ = ["DeltaIndexes"]

_MERGED = frozenset({"tool_calls"})  # OpenAI's own: pieces of one call, merged by its index
# Claude's single-object delta extensions, each said as a list under its plural key.
_LISTED = {key: f"{key}s" for key in (BLOCK_KEY, TEXT_BLOCK_KEY, CITATION_KEY)}


class DeltaIndexes:
    """One stream's running indexes: `number` gives each chunk's extension entries theirs."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[tuple[Any, str], int] = {}  # (choice index, delta key) → next index

    def number(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` (a `chat.completion.chunk`, changed in place) with each entry numbered."""
        for choice in body.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            for key, plural in _LISTED.items():
                if isinstance(delta.get(key), dict):
                    delta[plural] = [delta.pop(key)]
            for key, value in delta.items():
                if key not in _MERGED and isinstance(value, list):
                    delta[key] = self._numbered((choice.get("index"), key), value)
        return body

    def _numbered(self, where: tuple[Any, str], entries: list[Any]) -> list[Any]:
        out = []
        for entry in entries:
            if isinstance(entry, dict) and "index" not in entry:
                n = self._next.get(where, 0)
                self._next[where] = n + 1
                entry = {"index": n, **entry}
            out.append(entry)
        return out
