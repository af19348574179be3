"""Texts that a stream gives in pieces of one entry, each piece whole in a delta's unmodelled
keys: OpenRouter's `reasoning_details` (`{"index": 0, "type": "reasoning.text", "text": <a few
characters>}` a delta, which a client merges by their `index`, joining the strings), and the
events of a Responses upstream's hosted tool call that stream its text (`hosted_events`:
`response.mcp_call_arguments.delta`, `response.code_interpreter_call_code.delta`, each a piece
of the call's arguments or code, then a `.done` event with the whole). Each entry's text is one
text of its choice, screened as it goes as the content is (`StreamScreen`), so that a find split
across the pieces is caught as it is where the text comes whole (a unary answer, the `.done`
event). An entry without an `index` is whole (a signed thinking block), and so is every other
hosted event: screened whole, as before.

A piece's channel is `<key>[<entry>].<text key>`; what it holds is released as a piece of the
same entry (its `template`: a reasoning entry's index and type, an event but for its delta).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

import orjson

from clients.codec._responses_hosted import HOSTED_EVENTS
from router_service.guardrails._texts import json_object

__all__ = [
    "PIECE_KEYS",
    "hosted_pieces_only",
    "is_piece_channel",
    "screen_pieces",
    "whole_blocks",
    "with_piece",
]

# The reasoning keys whose list entries may come as pieces.
PIECE_KEYS = ("reasoning_details", "thinking_blocks")
_CHANNEL_KEYS = (*PIECE_KEYS, HOSTED_EVENTS)
# The text keys of a reasoning entry (as `_texts._REASONING_BLOCK_KEYS`).
_TEXT_KEYS = ("thinking", "text", "summary")
# What a piece says besides its text that is no more than where it goes.
_FRAME_KEYS = frozenset(("index", "type", "format"))
Channel = tuple[int, str | int]
# A channel's next text fed (final: the text ends here; else as the caller decides): what may
# be released.
Feed = Callable[[Channel, str, bool], str]


def is_piece(entry: Any) -> bool:
    return isinstance(entry, dict) and type(entry.get("index")) is int


def is_hosted_piece(event: Any) -> bool:
    """A hosted tool call's event carrying a piece of its text (`delta`)."""
    return (
        isinstance(event, dict)
        and str(event.get("type", "")).endswith(".delta")
        and isinstance(event.get("delta"), str)
    )


def hosted_pieces_only(extra: dict[str, Any] | None) -> bool:
    """Whether a delta's hosted events are all pieces of a text: no boundary before which what
    its choice holds must be released (it is held with them)."""
    events = None if extra is None else extra.get(HOSTED_EVENTS)
    return isinstance(events, list) and all(map(is_hosted_piece, events))


def is_piece_channel(what: str | int) -> bool:
    return isinstance(what, str) and what.startswith(_CHANNEL_KEYS) and "]." in what


def _channel(key: str, entry: object, text_key: str) -> str:
    return f"{key}[{entry}].{text_key}"


def screen_pieces(
    index: int,
    extra: dict[str, Any],
    feed: Feed,
    templates: dict[Channel, dict[str, Any]],
    held: Collection[Channel],
) -> list[str]:
    """The pieces in the unmodelled keys `extra` of choice `index`'s delta, each text fed to its
    channel and replaced by what may be released (a piece left saying nothing dropped); then the
    `held` piece channels this delta did not carry fed "" (`feed` flushes them when the choice's
    reasoning ends), what they release added as pieces. Each channel's piece template is noted
    in `templates`. Returns the prefixes of the channels of the entries a piece of which is
    signed."""
    signed: list[str] = []
    fed: set[Channel] = set()
    for key in _CHANNEL_KEYS:
        value = extra.get(key)
        if not isinstance(value, list):
            continue
        pieces = _pieces(index, key, value, templates)
        if pieces is None:
            continue
        ended = _ended_entries(key, pieces, held, feed, templates)
        fed.update(channel for channel, _ in ended)
        held_whole: list[int] = []  # the pieces whose text is all held: not sent
        for entry, texts in pieces:
            for text_key, channel in texts:
                entry[text_key] = feed(channel, entry[text_key], False)
                fed.add(channel)
            if "signature" in entry and key != HOSTED_EVENTS:
                signed.append(_channel(key, entry["index"], ""))
            if not (entry["delta"] if key == HOSTED_EVENTS else _says_something(entry)):
                held_whole.append(id(entry))
        kept = [piece for _, piece in ended]
        kept += [entry for entry in value if id(entry) not in held_whole]
        if kept:
            extra[key] = kept
        else:
            del extra[key]
    for channel in held:
        if channel not in fed and is_piece_channel(channel[1]):
            rest = feed(channel, "", False)
            if rest:
                _add_piece(extra, str(channel[1]), rest, templates.get(channel, {}))
    return signed


def _ended_entries(
    key: str,
    pieces: list[tuple[dict[str, Any], list[tuple[str, Channel]]]],
    held: Collection[Channel],
    feed: Feed,
    templates: dict[Channel, dict[str, Any]],
) -> list[tuple[Channel, dict[str, Any]]]:
    """The held texts of `key`'s entries that `pieces` do not continue, flushed: an upstream
    gives its entries (a hosted item's events) one after another, so another's piece ends them,
    and what they held goes out before it (else after the next entry's first pieces)."""
    begun = {_channel(key, _entry_id(key, entry), "") for entry, _ in pieces}
    ended: list[tuple[Channel, dict[str, Any]]] = []
    for channel in held:
        what = channel[1]
        if isinstance(what, str) and what.startswith(f"{key}[") and _entry_of(channel) not in begun:
            rest = feed(channel, "", True)
            if rest:
                piece = {**templates.get(channel, {}), what.rpartition("].")[2]: rest}
                ended.append((channel, piece))
    return ended


def _entry_of(channel: Channel) -> str:
    """The prefix of the channels of `channel`'s entry."""
    return str(channel[1]).rpartition("].")[0] + "]."


def _entry_id(key: str, entry: dict[str, Any]) -> object:
    """What tells a piece's entry (a hosted event's: its call's) from the others of `key`."""
    return (
        entry.get("item_id") or entry.get("output_index")
        if key == HOSTED_EVENTS
        else entry["index"]
    )


def _pieces(
    index: int, key: str, entries: list[Any], templates: dict[Channel, dict[str, Any]]
) -> list[tuple[dict[str, Any], list[tuple[str, Channel]]]] | None:
    """The pieces among `entries` of `key`, each with its texts' (text key, channel), their
    templates noted; None: none is a piece (most deltas)."""
    out: list[tuple[dict[str, Any], list[tuple[str, Channel]]]] = []
    for entry in entries:
        if key == HOSTED_EVENTS:
            if not is_hosted_piece(entry):
                continue
            channel: Channel = (index, _channel(key, _entry_id(key, entry), "delta"))
            templates[channel] = {k: v for k, v in entry.items() if k != "delta"}
            out.append((entry, [("delta", channel)]))
        elif is_piece(entry):
            texts: list[tuple[str, Channel]] = []
            for text_key in _TEXT_KEYS:
                if isinstance(entry.get(text_key), str):
                    channel = (index, _channel(key, entry["index"], text_key))
                    template = {k: entry[k] for k in ("index", "type") if k in entry}
                    templates[channel] = template
                    texts.append((text_key, channel))
            out.append((entry, texts))
    return out or None


def with_piece(extra_json: str, what: str, text: str, template: dict[str, Any]) -> str:
    """`extra_json` with a piece of the entry of channel `what` saying `text` added."""
    extra = json_object(extra_json) or {}
    _add_piece(extra, what, text, template)
    return orjson.dumps(extra).decode()


def whole_blocks(extra: dict[str, Any], keys: Collection[str]) -> dict[str, Any]:
    """The reasoning blocks of `extra` (its `keys` whose values are no strings) to be screened
    whole: without the pieces (`screen_pieces` screens them as they go)."""
    blocks: dict[str, Any] = {}
    for key, value in extra.items():
        if key not in keys or isinstance(value, str):
            continue
        if isinstance(value, list) and key in _CHANNEL_KEYS:
            piece = is_hosted_piece if key == HOSTED_EVENTS else is_piece
            value = [entry for entry in value if not piece(entry)]
        blocks[key] = value
    return blocks


def _add_piece(extra: dict[str, Any], what: str, text: str, template: dict[str, Any]) -> None:
    key, text_key = what.partition("[")[0], what.rpartition("].")[2]
    piece = {**template, text_key: text}
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
