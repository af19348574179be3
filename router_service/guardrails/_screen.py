"""Screening one request's texts against the rules that apply to its call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from router_service.config import GuardrailConfig
from router_service.errors import GuardrailBlockedError
from router_service.guardrails._rules import Rule, compile_rules
from router_service.guardrails._texts import TextSlot
from router_service.telemetry import record_guardrail_matches

__all__ = ["Guardrails"]


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

    def screen(self, texts: Iterable[TextSlot], client: str, model: str) -> tuple[str, ...]:
        """Check `texts` against the rules that apply to `client` calling `model`, in config
        order: a block rule's find raises GuardrailBlockedError (naming the rule, the detector
        and the field, never the text); a redact rule's finds are replaced in place. Returns
        the names of the rules that redacted something. A text is only rewritten when a rule
        changed it, and only the fields that changed are."""
        rules = [rule for rule in self._rules if rule.applies(client, model)]
        if not rules:
            return ()
        found: dict[str, Counter[str]] = {}
        try:
            for slot in texts:
                text = slot.text
                if not text:
                    continue
                changed = False
                for rule in rules:
                    if rule.action == "block":
                        detector = rule.first(text)
                        if detector is not None:
                            found.setdefault(rule.name, Counter())[detector] += 1
                            raise GuardrailBlockedError(rule.name, detector, param=slot.path)
                        continue
                    counts = found.setdefault(rule.name, Counter())
                    redacted = rule.redact(text, counts)
                    if redacted is not None:
                        text, changed = redacted, True
                if changed:
                    slot.replace(text)
        finally:
            _record(rules, found)
        return tuple(r.name for r in rules if r.action == "redact" and any(found.get(r.name, ())))


def _record(rules: Sequence[Rule], found: dict[str, Counter[str]]) -> None:
    actions = {rule.name: rule.action for rule in rules}
    for name, counts in found.items():
        for detector, count in counts.items():
            if count:
                record_guardrail_matches(name, actions[name], detector, count)
