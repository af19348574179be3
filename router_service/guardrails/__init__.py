"""Guardrails: what a call's text must not carry to a provider, and what a model's answer must
not carry back to its caller.

`guardrails:` rules (config/_guardrails.py) name built-in detectors (`_detectors`) and operator
regexes, an action (block | redact), the side they screen (`apply_to`: request, response) and
optionally the clients and models they apply to. Request side: the auth Gate screens each
call's texts once, after its caller and model are known and before it is counted, cached,
routed or stored (auth/_gate.py); MethodRule.texts says where a method's request keeps its
texts (`_texts`). Response side: the servicer gives a chat call the AnswerGuard of the rules
that apply to it (None: none do), and the Executor screens its answer before it is cached or
returned (`_answers`), a stream as it goes (`_stream`); the servicer does the same for a
transcription's or translation's answer (`_transcripts`, SCREENED_MEDIA).
"""

from typing import TYPE_CHECKING

from clients._lazy import lazy_names

if TYPE_CHECKING:  # for the type checker: at run time each name is imported on first use
    from router_service.guardrails._answers import AnswerAudit, AnswerGuard
    from router_service.guardrails._detectors import DETECTORS, Detector, DetectorName, luhn_valid
    from router_service.guardrails._realtime_texts import event_texts, session_texts
    from router_service.guardrails._rules import PATTERN_DETECTOR, Match, Rule, compile_rules
    from router_service.guardrails._screen import Guardrails
    from router_service.guardrails._stream import StreamScreen
    from router_service.guardrails._text_screen import (
        HOLD_BACK_CHARS,
        RELEASE_STEP_CHARS,
        TextScreen,
    )
    from router_service.guardrails._texts import (
        TextSlot,
        chat_texts,
        embedding_texts,
        json_item_texts,
        media_texts,
        message_texts,
        stored_response_texts,
    )
    from router_service.guardrails._transcript_stream import TranscriptScreen
    from router_service.guardrails._transcripts import SCREENED_MEDIA, transcript_texts

# Each name's module, imported when the name is first read (clients/_lazy.py): the built-in
# detectors compile their regexes at import (~0.5 MiB of RSS), and a router without
# `guardrails:` rules screens nothing, so it never reads DETECTORS, Rule or TextScreen
# (tests/router_service/server/test_idle_imports.py).
_WHERE = {
    "AnswerAudit": "_answers",
    "AnswerGuard": "_answers",
    "DETECTORS": "_detectors",
    "Detector": "_detectors",
    "DetectorName": "_detectors",
    "Guardrails": "_screen",
    "HOLD_BACK_CHARS": "_text_screen",
    "Match": "_rules",
    "PATTERN_DETECTOR": "_rules",
    "RELEASE_STEP_CHARS": "_text_screen",
    "Rule": "_rules",
    "SCREENED_MEDIA": "_transcripts",
    "StreamScreen": "_stream",
    "TextScreen": "_text_screen",
    "TextSlot": "_texts",
    "TranscriptScreen": "_transcript_stream",
    "chat_texts": "_texts",
    "compile_rules": "_rules",
    "embedding_texts": "_texts",
    "event_texts": "_realtime_texts",
    "json_item_texts": "_texts",
    "luhn_valid": "_detectors",
    "media_texts": "_texts",
    "message_texts": "_texts",
    "session_texts": "_realtime_texts",
    "stored_response_texts": "_texts",
    "transcript_texts": "_transcripts",
}
# Hidden from type checkers: a module `__getattr__` makes every name it lacks `Any` to them,
# a misspelt import no error; they read the names above instead.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = [
    "DETECTORS",
    "HOLD_BACK_CHARS",
    "PATTERN_DETECTOR",
    "RELEASE_STEP_CHARS",
    "SCREENED_MEDIA",
    "AnswerAudit",
    "AnswerGuard",
    "Detector",
    "DetectorName",
    "Guardrails",
    "Match",
    "Rule",
    "StreamScreen",
    "TextScreen",
    "TextSlot",
    "TranscriptScreen",
    "chat_texts",
    "compile_rules",
    "embedding_texts",
    "event_texts",
    "json_item_texts",
    "luhn_valid",
    "media_texts",
    "message_texts",
    "session_texts",
    "stored_response_texts",
    "transcript_texts",
]
