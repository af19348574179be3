"""The texts of a media call's answer that answer-side rules screen: a transcription's, and a
translation's (a transcript in English, in the same formats).

A transcription answers JSON (`json`, `verbose_json`, `diarized_json`: its `text`, and each
segment's) or a text body (`text`, `srt`, `vtt`: screened whole, cue numbers and timings with
it). When a rule changed a JSON answer, its `words` and `logprobs` are dropped: their words and
tokens are the raw text (as a chat choice loses its logprobs); so are its `segments` when a find
spans two of them (a number read across a segment's end: each piece alone passes the rules).
A JSON answer that does not parse is screened as a text body. Images, speech and moderations
answer no text of a model's (image bytes, audio bytes, scores): not screened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from clients.switchboard.v1 import media_pb2
from router_service.guardrails._texts import TextSlot, json_strings

if TYPE_CHECKING:  # rules exist only where configured: their detectors load with them
    from router_service.guardrails._rules import Rule

__all__ = ["SCREENED_MEDIA", "transcript_texts"]

# The media operations whose answers answer-side rules screen.
SCREENED_MEDIA = frozenset(
    {media_pb2.MEDIA_OPERATION_AUDIO_TRANSCRIPTIONS, media_pb2.MEDIA_OPERATION_AUDIO_TRANSLATIONS}
)
_TEXT_KEYS = frozenset(("text",))
# Keys of a transcription's JSON that repeat its text word by word or token by token.
_RAW_TOKENS = ("words", "logprobs")


def transcript_texts(
    result: media_pb2.MediaResult, rules: Sequence[Rule] = ()
) -> Iterator[TextSlot]:
    """The texts of a transcription's answer; its body is written again only when a slot
    changed (replace a slot before asking for the next, as the screen does). `rules`: what
    screens it, to tell a find split across segments."""
    kind = result.content_type.partition(";")[0].strip().lower()
    if kind == "application/json":
        try:
            value = orjson.loads(result.body)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            slots = list(json_strings(value, (), _TEXT_KEYS))
            yield from slots
            if any(slot.changed for slot in slots):
                for key in _RAW_TOKENS:
                    value.pop(key, None)
                if _split_find(value.get("segments"), rules):
                    del value["segments"]
                result.body = orjson.dumps(value)
            return
    elif not kind.startswith("text/"):
        return
    # Text as it came, bytes that are no UTF-8 kept as they are (surrogate escapes).
    held = {"text": result.body.decode("utf-8", "surrogateescape")}
    slot = TextSlot(held, "text", ("text",), item=True)
    yield slot
    if slot.changed:
        result.body = held["text"].encode("utf-8", "surrogateescape")


def _split_find(segments: Any, rules: Sequence[Rule]) -> bool:
    """Whether the segments' texts (as screened), joined, hold a find none of them held alone."""
    if not isinstance(segments, list):
        return False
    texts = [s["text"] for s in segments if isinstance(s, dict) and isinstance(s.get("text"), str)]
    joined = ("".join(texts), " ".join(texts))  # segments' texts begin with a space, or not
    return any(rule.first(text) is not None for rule in rules for text in joined)
