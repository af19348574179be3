"""A choice's `logprobs.content` cut with its text where the router enforces a stop
(_stops.py): the entries past the cut are dropped, as an upstream that had honoured the stop
would not have generated their tokens.

Each entry is placed by its token's UTF-8 bytes: the entries' tokens, in order, make the
choice's text, so an entry begins where the tokens before it end, counted in bytes, as the text
is where it is cut. Its `bytes` say them (a token of part of a character, an emoji a byte-level
tokenizer split, is written escaped, `"\\xf0\\x9f"`, by OpenAI and DeepSeek: its `token` is longer
than what it makes); without them, its `token` encoded. An entry is kept when it begins before
the cut: every character the caller sees has its entry (the last one kept may be a token the
cut went through, "fou" of "four"); none is kept for text the caller does not see. The other
keys of the object (`refusal`) stay as the upstream sent them. A stream holds each choice's
entries back with the text it holds and releases them with it (`HeldLogprobs`).
"""

from __future__ import annotations

from typing import Any

import orjson

from router_service.guardrails._texts import json_object

__all__ = ["HeldLogprobs", "cut_logprobs"]

Entry = dict[str, Any]


def _entries(logprobs_json: str) -> tuple[dict[str, Any], list[Entry]] | None:
    """The logprobs object and its `content` entries; None: no content entries to place."""
    value = json_object(logprobs_json)
    content = value.get("content") if value is not None else None
    if value is None or not isinstance(content, list):
        return None
    return value, [e for e in content if isinstance(e, dict)]


def _length(entry: Entry) -> int:
    """The UTF-8 bytes of the entry's token."""
    raw, token = entry.get("bytes"), entry.get("token")
    if isinstance(raw, list):
        return len(raw)
    return len(token.encode()) if isinstance(token, str) else 0


def cut_logprobs(logprobs_json: str, at: int) -> str:
    """`logprobs_json` with only the entries whose token begins before byte `at` of the text."""
    found = _entries(logprobs_json)
    if found is None:
        return logprobs_json
    value, entries = found
    kept, start = [], 0
    for entry in entries:
        if start >= at:
            break
        kept.append(entry)
        start += _length(entry)
    return orjson.dumps({**value, "content": kept}).decode()


class HeldLogprobs:
    """The entries a stream's choices hold back, each with where its token begins in the text
    its choice holds (in UTF-8 bytes; the held text's first byte is 0)."""

    __slots__ = ("_held", "_shape")

    def __init__(self) -> None:
        self._held: dict[int, list[tuple[int, Entry]]] = {}
        self._shape: dict[int, dict[str, Any]] = {}  # the object's other keys, per choice

    def take(self, index: int, logprobs_json: str, at: int) -> bool:
        """Hold a delta's entries, its text beginning at byte `at` of what choice `index` holds.
        False: the delta's logprobs are not entries to place (left as they are)."""
        found = _entries(logprobs_json)
        if found is None:
            return False
        value, entries = found
        self._shape[index] = {k: v for k, v in value.items() if k != "content"}
        held = self._held.setdefault(index, [])
        for entry in entries:
            held.append((at, entry))
            at += _length(entry)
        return True

    def release(self, index: int, upto: int, *, end: bool = False) -> str:
        """The `logprobs` JSON of choice `index`'s entries beginning before byte `upto` (the text
        released), the rest held on, placed after it; `end`: the choice ends there, the rest
        dropped. "": none were ever held for it."""
        if index not in self._shape:
            return ""
        held = self._held.get(index, [])
        out = [entry for start, entry in held if start < upto]
        rest = [(start - upto, entry) for start, entry in held if start >= upto]
        if end:
            self._held.pop(index, None)
        else:
            self._held[index] = rest
        if not out:
            return ""
        return orjson.dumps({**self._shape[index], "content": out}).decode()
