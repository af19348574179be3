"""Guardrails on the request side: what a call's text must not carry to a provider.

`guardrails:` rules (config/_guardrails.py) name built-in detectors (`_detectors`) and operator
regexes, an action (block | redact) and optionally the clients and models they apply to. The
auth Gate screens each call's texts once, after its caller and model are known and before it is
counted, cached, routed or stored (auth/_gate.py); MethodRule.texts says where a method's
request keeps its texts (`_texts`).
"""

from router_service.guardrails._detectors import DETECTORS, Detector, DetectorName, luhn_valid
from router_service.guardrails._rules import PATTERN_DETECTOR, Match, Rule, compile_rules
from router_service.guardrails._screen import Guardrails
from router_service.guardrails._texts import (
    TextSlot,
    chat_texts,
    embedding_texts,
    json_item_texts,
    media_texts,
    message_texts,
    stored_response_texts,
)

__all__ = [
    "DETECTORS",
    "PATTERN_DETECTOR",
    "Detector",
    "DetectorName",
    "Guardrails",
    "Match",
    "Rule",
    "TextSlot",
    "chat_texts",
    "compile_rules",
    "embedding_texts",
    "json_item_texts",
    "luhn_valid",
    "media_texts",
    "message_texts",
    "stored_response_texts",
]
