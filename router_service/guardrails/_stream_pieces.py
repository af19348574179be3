"""Reasoning entries that a stream gives as pieces of one entry (OpenRouter's
`reasoning_details`: `{"index": 0, "type": "reasoning.text", "text": <a few characters>}` a
delta, which a client merges by their `index`, joining the strings): each entry's text is one
text of its choice, screened as it goes as the content is (`StreamScreen`), so that a find split
across the pieces is caught as it is in a unary answer, which carries the entry whole. An entry
without an `index` is whole (a signed thinking block): screened whole, as before.

A piece's channel is `<key>[<entry index>].<text key>`; what it holds is released as a piece of
the same entry (its index and type), as its choice's other reasoning is.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

import orjson

from router_service.guardrails._texts import json_object

__all__ = ["PIECE_KEYS", "is_piece_channel", "screen_pieces", "whole_blocks", "with_piece"]

# The reasoning keys whose list entries may come as pieces.
PIECE_KEYS = ("reasoning_details", "thinking_blocks")
# The text keys of a reasoning entry (as `_texts._REASONING_BLOCK_KEYS`).
_TEXT_KEYS = ("thinking", "text", "summary")
# What a piece says besides its text that is no more than where it goes.
_FRAME_KEYS = frozenset(("index", "type", "format"))
Channel = tuple[int, str | int]
# A channel's next text fed (final or not, as the caller decides): what may be released.
Feed = Callable[[Channel, str], str]


def is_piece(entry: Any) -> bool:
    return isinstance(entry, dict) and type(entry.get("index")) is int


def is_piece_channel(what: str | int) -> bool:
    return isinstance(what, str) and what.startswith(PIECE_KEYS) and "]." in what


def _channel(key: str, entry: int, text_key: str) -> str:
    return f"{key}[{entry}].{text_key}"


def screen_pieces(
    index: int,
    extra: dict[str, Any],
    feed: Feed,
    types: dict[Channel, Any],
    held: Collection[Channel],
) -> list[str]:
    """The pieces in the unmodelled keys `extra` of choice `index`'s delta, each text fed to its
    channel and replaced by what may be released (a piece left saying nothing dropped); then the
    `held` piece channels this delta did not carry fed "" (`feed` flushes them when the choice's
    reasoning ends), what they release added as pieces. Each channel's entry type is noted in
    `types`. Returns the prefixes of the channels of the entries a piece of which is signed."""
    signed: list[str] = []
    fed: set[Channel] = set()
    for key in PIECE_KEYS:
        value = extra.get(key)
        if not isinstance(value, list) or not any(map(is_piece, value)):
            continue
        kept = []
        for entry in value:
            if is_piece(entry):
                for text_key in _TEXT_KEYS:
                    text = entry.get(text_key)
                    if isinstance(text, str):
                        channel: Channel = (index, _channel(key, entry["index"], text_key))
                        types[channel] = entry.get("type")
                        entry[text_key] = feed(channel, text)
                        fed.add(channel)
                if "signature" in entry:
                    signed.append(_channel(key, entry["index"], ""))
                if not _says_something(entry):
                    continue  # all of its text held
            kept.append(entry)
        if kept:
            extra[key] = kept
        else:
            del extra[key]
    for channel in held:
        if channel not in fed and is_piece_channel(channel[1]):
            rest = feed(channel, "")
            if rest:
                _add_piece(extra, str(channel[1]), rest, types.get(channel))
    return signed


def with_piece(extra_json: str, what: str, text: str, kind: Any) -> str:
    """`extra_json` with a piece of the entry of channel `what` saying `text` added."""
    extra = json_object(extra_json) or {}
    _add_piece(extra, what, text, kind)
    return orjson.dumps(extra).decode()


def whole_blocks(extra: dict[str, Any], keys: Collection[str]) -> dict[str, Any]:
    """The reasoning blocks of `extra` (its `keys` whose values are no strings) to be screened
    whole: without the pieces (`screen_pieces` screens them as they go)."""
    blocks: dict[str, Any] = {}
    for key, value in extra.items():
        if key not in keys or isinstance(value, str):
            continue
        if isinstance(value, list) and key in PIECE_KEYS:
            value = [entry for entry in value if not is_piece(entry)]
        blocks[key] = value
    return blocks


def _add_piece(extra: dict[str, Any], what: str, text: str, kind: Any) -> None:
    key, _, rest = what.partition("[")
    number, _, text_key = rest.partition("].")
    piece: dict[str, Any] = {"index": int(number)}
    if kind is not None:
        piece["type"] = kind
    piece[text_key] = text
    listed = extra.get(key)
    if isinstance(listed, list):
        listed.append(piece)
    else:
        extra[key] = [piece]


def _says_something(entry: dict[str, Any]) -> bool:
    return any(value != "" for key, value in entry.items() if key not in _FRAME_KEYS)


def channels_of(prefix: str, channels: Iterator[Channel], index: int) -> list[Channel]:
    """The channels of choice `index` whose names begin with `prefix` (an entry's)."""
    return [c for c in channels if c[0] == index and str(c[1]).startswith(prefix)]
