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

from router_service.guardrails._answers import AnswerAudit, AnswerGuard
from router_service.guardrails._detectors import DETECTORS, Detector, DetectorName, luhn_valid
from router_service.guardrails._realtime_texts import event_texts, session_texts
from router_service.guardrails._rules import PATTERN_DETECTOR, Match, Rule, compile_rules
from router_service.guardrails._screen import Guardrails
from router_service.guardrails._stream import (
    HOLD_BACK_CHARS,
    RELEASE_STEP_CHARS,
    StreamScreen,
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
