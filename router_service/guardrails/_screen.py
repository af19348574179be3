"""Screening one request's texts against the rules that apply to its call; the rules that
screen its answer (`_answers`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING

from router_service.config import GuardrailAction, GuardrailConfig
from router_service.guardrails._answers import AnswerAudit, AnswerGuard
from router_service.guardrails._finds import Found, screen_text
from router_service.guardrails._texts import TextSlot
from router_service.telemetry import record_guardrail_matches

if TYPE_CHECKING:  # rules exist only where configured: their detectors load with them
    from router_service.guardrails._rules import Rule

__all__ = ["Guardrails"]


class Guardrails:
    """The `guardrails:` section, compiled (once per config load): the rules that screen
    requests (`screen`; true when there is one) and those that screen answers (`answers`)."""

    __slots__ = ("_answers", "_rules")

    def __init__(self, configs: Sequence[GuardrailConfig]) -> None:
        # The rules' module brings the built-in detectors, whose regexes are compiled at import:
        # a router without rules never loads them (test_idle_imports.py).
        rules: tuple[Rule, ...] = ()
        if configs:
            from router_service.guardrails._rules import compile_rules

            rules = compile_rules(configs)
        self._rules = tuple(r for r in rules if "request" in r.sides)
        self._answers = tuple(r for r in rules if "response" in r.sides)
        if self._answers:  # a screened stream's text screen, loaded now, not by its first chunk
            import_module("router_service.guardrails._text_screen")

    def __bool__(self) -> bool:
        return bool(self._rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The request-side rules."""
        return self._rules

    @property
    def screens_answers(self) -> bool:
        """Whether any rule screens answers (`apply_to: [response]`)."""
        return bool(self._answers)

    def answers(
        self, client: str, model: str, audit: Callable[[], AnswerAudit] | None = None
    ) -> AnswerGuard | None:
        """What screens the answer of `client` calling `model`; None (the common case: one
        test) when no response-side rule applies. `audit` makes the call's audit hook, only
        when a rule applies."""
        if not self._answers:
            return None
        rules = [r for r in self._answers if r.applies(client, model)]
        if not rules:
            return None
        return AnswerGuard(rules, None if audit is None else audit())

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
        # Texts no rule found anything in: a JSON schema repeats many ("string", "object").
        clean: set[str] = set()
        try:
            for slot in texts:
                slot.rewritable |= keeping  # storing refuses nothing: a later call's screen does
                text = slot.text
                if text and text not in clean:
                    screen_text(slot, text, rules, actions, found)
                    if not slot.changed:
                        clean.add(text)
        finally:
            for name, counts in found.items():
                for detector, count in counts.items():
                    record_guardrail_matches(name, actions[name], detector, count, "request")
        return tuple(r.name for r in rules if actions[r.name] == "redact" and r.name in found)
