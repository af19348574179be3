"""Screening one request's texts against the rules that apply to its call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from router_service.config import GuardrailAction, GuardrailConfig
from router_service.errors import GuardrailBlockedError
from router_service.guardrails._rules import Rule, compile_rules
from router_service.guardrails._texts import TextSlot
from router_service.telemetry import record_guardrail_matches

__all__ = ["Guardrails"]

# A rule's finds in one request: rule name -> detector -> count.
Found = dict[str, Counter[str]]


class Guardrails:
    """The `guardrails:` section, compiled (once per config load)."""

    __slots__ = ("_rules",)

    def __init__(self, configs: Sequence[GuardrailConfig]) -> None:
        self._rules = compile_rules(configs)

    def __bool__(self) -> bool:
        return bool(self._rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def screen(
        self, texts: Iterable[TextSlot], client: str, model: str, *, keeping: bool = False
    ) -> tuple[str, ...]:
        """Check `texts` against the rules that apply to `client` calling `model`, in config
        order: a block rule's find raises GuardrailBlockedError (naming the rule, the detector
        and the field, never the text); a redact rule's finds are replaced in place. Returns
        the names of the rules that redacted something. A text is only rewritten when a rule
        changed it.

        `keeping`: the texts are what a call stores for later calls (a stored response, a
        conversation's items), which name no model: every rule of the client applies whatever
        its `models`, and each redacts (storing refuses nothing: what it keeps is screened
        again, as a request, when a later call sends it)."""
        rules = [r for r in self._rules if r.applies(client, None if keeping else model)]
        if not rules:
            return ()
        actions: dict[str, GuardrailAction] = {
            r.name: "redact" if keeping else r.action for r in rules
        }
        found: Found = {}
        try:
            for slot in texts:
                text = slot.text
                if text:
                    _screen_text(slot, text, rules, actions, found)
        finally:
            for name, counts in found.items():
                for detector, count in counts.items():
                    record_guardrail_matches(name, actions[name], detector, count)
        return tuple(r.name for r in rules if actions[r.name] == "redact" and r.name in found)


def _screen_text(
    slot: TextSlot,
    text: str,
    rules: Sequence[Rule],
    actions: dict[str, GuardrailAction],
    found: Found,
) -> None:
    changed = False
    for rule in rules:
        if actions[rule.name] == "block":
            detector = rule.first(text)
            if detector is not None:
                found.setdefault(rule.name, Counter())[detector] += 1
                raise GuardrailBlockedError(rule.name, detector, param=slot.path)
            continue
        counts: Counter[str] = Counter()
        redacted = rule.redact(text, counts)
        if redacted is not None:
            found.setdefault(rule.name, Counter()).update(counts)
            text, changed = redacted, True
    if changed:
        slot.replace(text)
