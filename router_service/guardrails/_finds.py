"""One text through a list of rules: what both sides (a request's texts, an answer's) share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailAction
from router_service.errors import GuardrailBlockedError
from router_service.guardrails._texts import TextSlot

if TYPE_CHECKING:  # rules exist only where configured: their detectors load with them
    from router_service.guardrails._rules import Rule

__all__ = ["Found", "counted", "named", "screen_text", "withhold"]

# The rules' finds in one call: rule name -> detector -> count.
Found = dict[str, Counter[str]]


def screen_text(
    slot: TextSlot,
    text: str,
    rules: Sequence[Rule],
    actions: dict[str, GuardrailAction],
    found: Found,
) -> None:
    """`text` (the slot's) through `rules` in order: a block rule's find raises
    GuardrailBlockedError (naming the rule, the detector and the slot's path), a redact rule's
    finds are replaced; the slot is rewritten only when a rule changed its text. A slot that
    is not rewritable (a name, a signed block) is blocked by a redact rule's find too. Each find
    is counted in `found`."""
    changed = False
    for rule in rules:
        if actions[rule.name] == "block" or not slot.rewritable:
            detector = rule.first(text)
            if detector is not None:
                counted(found, rule.name, detector)
                raise GuardrailBlockedError(rule.name, detector, param=named(slot.path, rules))
            continue
        counts: Counter[str] = Counter()
        redacted = rule.redact(text, counts)
        if redacted is not None:
            found.setdefault(rule.name, Counter()).update(counts)
            text, changed = redacted, True
    if changed:
        slot.replace(text)


def named(path: str, rules: Sequence[Rule]) -> str:
    """`path` as an error may name it: the keys of a JSON a caller sent are part of it, so what
    a rule finds in one is replaced as a redaction would (and not counted)."""
    for rule in rules:
        path = rule.redact(path, Counter()) or path
    return path


def counted(found: Found, rule: str, detector: str, count: int = 1) -> None:
    found.setdefault(rule, Counter())[detector] += count


def withhold(choice: chat_pb2.Choice | chat_pb2.ChunkChoice, message: chat_pb2.ChatMessage) -> None:
    """Withhold an answer's choice (`message`: its message, or a stream's delta): nothing of
    what it said stays but its role, and it ends with finish_reason `content_filter`."""
    role = message.role
    message.Clear()
    message.role = role
    choice.finish_reason = chat_pb2.FINISH_REASON_CONTENT_FILTER
    choice.finish_reason_raw = "content_filter"
    choice.ClearField("logprobs_json")
    choice.ClearField("matched_stop")  # it ended on the filter, not on a stop sequence
