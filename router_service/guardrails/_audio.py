"""An answer's spoken output (OpenAI's `modalities: ["audio"]`): the message's `audio` object,
whose `transcript` is what the audio `data` says. Screened as the answer's text is, but a find
there cannot be redacted (the audio would still say it): it withholds the choice, as a block
rule's does. A stream's `audio` deltas (pieces of the transcript and of the data, merged by
the client) are held until their choice finishes, then screened whole and sent whole, or
withheld with the choice: sent as they came, the audio of a find would be out before the
transcript that shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from clients.switchboard.v1 import chat_pb2
from router_service.guardrails._texts import TextSlot, json_object

__all__ = ["AUDIO_KEY", "HeldAudio", "audio_transcript"]

AUDIO_KEY = "audio"
_JOINED = ("transcript", "data")  # the strings a stream gives in pieces
_MARK = f'"{AUDIO_KEY}"'  # a cheap test before parsing a message's unmodelled keys


def audio_transcript(message: chat_pb2.ChatMessage, field: str) -> Iterator[TextSlot]:
    """The transcript of `message`'s audio: not rewritable (a find withholds the choice)."""
    if _MARK not in message.extra_json:
        return
    audio = (json_object(message.extra_json) or {}).get(AUDIO_KEY)
    if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
        where = (field, AUDIO_KEY, "transcript")
        yield TextSlot(audio, "transcript", where, item=True, rewritable=False)


class _Pieces(list[str]):
    """A joined string's pieces, as held (a list the upstream's JSON never gives)."""


class HeldAudio:
    """A stream's `audio` deltas, per choice, held until the choice finishes."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        # The joined strings held as their pieces, joined once on release: a spoken answer's
        # data is megabytes in a few kilobytes a delta, and joining it a delta at a time
        # copied it all again on each (seconds of the event loop for a minute of audio).
        self._held: dict[int, dict[str, Any]] = {}

    def take(self, index: int, delta: chat_pb2.ChatMessage) -> None:
        """Take the `audio` of choice `index`'s delta out of it, merged into what is held."""
        if _MARK not in delta.extra_json:
            return
        extra = json_object(delta.extra_json)
        audio = None if extra is None else extra.pop(AUDIO_KEY, None)
        if not isinstance(audio, dict) or extra is None:
            return
        held = self._held.setdefault(index, {})
        for key, value in audio.items():
            if key in _JOINED and isinstance(value, str):
                pieces = held.get(key)
                if isinstance(pieces, _Pieces):
                    pieces.append(value)
                else:
                    held[key] = _Pieces((value,))
            else:
                held[key] = value
        delta.extra_json = orjson.dumps(extra).decode() if extra else ""

    def release(self, index: int, delta: chat_pb2.ChatMessage, field: str) -> TextSlot | None:
        """Put choice `index`'s held audio, whole, on its last `delta`; the slot of its
        transcript, to screen (None: none)."""
        held = self._held.pop(index, None)
        if held is None:
            return None
        audio = {k: "".join(v) if isinstance(v, _Pieces) else v for k, v in held.items()}
        extra = json_object(delta.extra_json) or {}
        extra[AUDIO_KEY] = audio
        delta.extra_json = orjson.dumps(extra).decode()
        if not isinstance(audio.get("transcript"), str):
            return None
        where = (field, AUDIO_KEY, "transcript")
        return TextSlot(audio, "transcript", where, item=True, rewritable=False)

    def drop(self, index: int) -> None:
        self._held.pop(index, None)
