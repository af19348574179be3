"""Guardrail rules bound for use: each rule's detectors compiled into one regex (a named group
per detector, so one pass over a text finds any of them), its operator patterns beside it, and
who and what it applies to."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from router_service.config import GuardrailConfig
from router_service.guardrails._detectors import DETECTORS, CardScan, as_read
from router_service.guardrails._texts import with_replaced

__all__ = ["PATTERN_DETECTOR", "Match", "Rule", "compile_rules"]

# The detector name a rule's operator pattern (`patterns:`) reports as.
PATTERN_DETECTOR = "pattern"
_NONE = (1 << 62, 1 << 62, "")  # no find left: after any


@dataclass(frozen=True, slots=True)
class Match:
    start: int
    end: int
    detector: str


class Rule:
    """One `guardrails:` entry, compiled."""

    __slots__ = (
        "_accept",
        "_before_card",
        "_begin",
        "_cards",
        "_combined",
        "_extend",
        "_lean",
        "_opens",
        "_others",
        "_patterns",
        "action",
        "clients",
        "models",
        "name",
        "sides",
        "signature",
    )

    def __init__(self, config: GuardrailConfig) -> None:
        self.name = config.name
        self.action = config.action
        self.clients = None if config.clients is None else frozenset(config.clients)
        self.models = None if config.models is None else tuple(config.models)
        self.sides = frozenset(config.apply_to)
        # Names the rule as configured: what the response cache keys a screened answer by.
        self.signature = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
        names = list(dict.fromkeys(config.detect))
        # Cards are found apart (`CardScan`: a run of digit groups holds a candidate at each
        # group); where a card and another find begin together, the one named first wins.
        self._cards = "credit_card" in names
        self._before_card = frozenset(names[: names.index("credit_card")] if self._cards else ())
        detectors = [DETECTORS[name] for name in names if name != "credit_card"]
        self._combined = (
            re.compile("|".join(f"(?P<{d.name}>{d.pattern})" for d in detectors))
            if detectors
            else None
        )
        # For a text without an `@` (most prose): what it finds there, cheaper.
        self._lean = (
            re.compile("|".join(f"(?P<{d.name}>{d.lean or d.pattern})" for d in detectors))
            if any(d.lean for d in detectors)
            else self._combined
        )
        self._accept: dict[str, Callable[[str], int]] = {
            d.name: d.accept for d in detectors if d.accept is not None
        }
        self._begin: dict[str, Callable[[str, int], int]] = {
            d.name: d.begin for d in detectors if d.begin is not None
        }
        self._extend: dict[str, Callable[[str, int, int], int]] = {
            d.name: d.extend for d in detectors if d.extend is not None
        }
        self._opens = tuple((d.opens, d.closes) for d in detectors if d.opens is not None)
        # Per checked detector: the others, tried where a find of it failed its check.
        self._others = {
            name: re.compile("|".join(f"(?P<{d.name}>{d.pattern})" for d in others))
            for name in self._accept
            if (others := [d for d in detectors if d.name != name])
        }
        self._patterns = tuple(re.compile(p) for p in config.patterns)

    def applies(self, client: str, model: str | None) -> bool:
        """Whether calls of `client` (its auth.clients name; "" when anonymous) naming `model`
        (None: whatever model) are this rule's to check."""
        if self.clients is not None and client not in self.clients:
            return False
        if model is None or self.models is None:
            return True
        return any(fnmatchcase(model, p) for p in self.models)

    def first(self, text: str) -> str | None:
        """The detector of the first thing this rule finds in `text`; None: nothing."""
        for match in self.matches(text):
            return match.detector
        return None

    def matches(self, text: str, start: int = 0) -> Iterator[Match]:
        """What this rule finds in `text`, by detector: the built-ins' in one pass, then each
        operator pattern's (matches of different detectors may overlap). The built-ins read the
        text's backslash escapes as what they stand for (`as_read`); operator patterns, as
        written. `start`: the built-ins' finds begin there or after (the text before it read
        as context), as a scan of the whole text goes on after a find that ended there."""
        if self._combined is not None or self._cards:
            yield from self._detected(as_read(text), start)
        for pattern in self._patterns:
            for found in pattern.finditer(text):
                if found.end() > found.start():  # an empty match hides nothing
                    yield Match(found.start(), found.end(), PATTERN_DETECTOR)

    def opened(
        self, text: str, start: int, cut: int, walks: list[str]
    ) -> tuple[int, Callable[[str, int], bool] | None] | None:
        """Streams: the first offset of `text`, from `start` and before `cut`, where a built-in's
        find may begin that the text's end is still inside, more text making it one or longer
        (a private key's block before its END line), and what in later text ends it (its
        detector's `closes`); None: none (most texts). `walks`: the stream's own memo (the
        `TextScreen`'s: no stream's state reaches another's)."""
        if not self._opens:
            return None
        read = None  # read as the detectors do only when the text as sent holds one open
        first = None
        for opens, closes in self._opens:
            # No escape stands for a dash or an address's character: None as sent is None read.
            at = opens(text, start, cut, walks)
            if at is not None and "\\" in text:
                read = as_read(text) if read is None else read
                at = opens(read, start, cut, walks)
            if at is not None and (first is None or at < first[0]):
                first = (at, closes)
        return first

    def _detected(self, text: str, position: int) -> Iterator[Match]:
        """The built-ins' finds in `text` from `position`, in order: the next card or the next
        other find, whichever begins first, each taken up from where the last find ended."""
        cards = CardScan(text) if self._cards else None
        combined = self._combined if "@" in text else self._lean
        other: tuple[int, int, str] = (-1, -1, "")  # each looked for again once passed
        card = _NONE[:2] if cards is None else (-1, -1)
        while True:
            if other[0] < position:
                other = self._next_other(combined, text, position)
            if cards is not None and card[0] < position:
                card = cards.next(position)
            if card[0] < other[0] or (card[0] == other[0] and other[2] not in self._before_card):
                start, end, detector = card[0], card[1], "credit_card"
            else:
                start, end, detector = other
            if start >= _NONE[0]:
                return
            yield Match(start, end, detector)
            position = max(end, start + 1)

    def _next_other(
        self, combined: re.Pattern[str] | None, text: str, position: int
    ) -> tuple[int, int, str]:
        """The first find at `position` or after of the detectors but cards; `_NONE`: none."""
        if combined is None:
            return _NONE
        while (found := combined.search(text, position)) is not None:
            start = found.start()
            end = self._accepted_end(found)
            if end is None:
                # Not one after all (a number failing Luhn): another detector may find
                # something where it starts; else look again from the next character.
                other = self._others.get(found.lastgroup or "")
                found = None if other is None else other.match(text, start)
                end = None if found is None else self._accepted_end(found)
                if found is None or end is None:
                    position = start + 1
                    continue
            extend = self._extend.get(found.lastgroup or "")
            if extend is not None:  # (a long key's body past its pattern's bounds)
                end = extend(text, start, end)
            begin = self._begin.get(found.lastgroup or "")
            if begin is not None:  # not before where the search began: a find ended there
                start = max(position, begin(text, start))
            return start, end, found.lastgroup or ""
        return _NONE

    def _accepted_end(self, found: re.Match[str]) -> int | None:
        """Where the find `found` is ends (its check may keep only its start); None: none."""
        accept = self._accept.get(found.lastgroup or "")
        if accept is None:
            return found.end()
        kept = accept(found.group())
        return found.start() + kept if kept else None

    def redact(self, text: str, counts: Counter[str]) -> str | None:
        """`text` with what this rule finds replaced by `[REDACTED:<detector>]`, each find
        counted in `counts` by detector; None: nothing found (no copy made)."""
        replaced = self.replacements(text, counts)
        return with_replaced(text, replaced) if replaced else None

    def replacements(
        self, text: str, counts: Counter[str] | None = None
    ) -> list[tuple[int, int, str]]:
        """What `redact` replaces in `text`, in order: (start, end, marker), overlapping finds
        merged into the first one's marker; each find counted in `counts`."""
        found = sorted(self.matches(text), key=lambda m: (m.start, -m.end))
        out: list[tuple[int, int, str]] = []
        position = 0
        for match in found:
            if counts is not None:
                counts[match.detector] += 1
            if match.end <= position:  # inside what an earlier find already replaced
                continue
            if match.start >= position:
                out.append((match.start, match.end, f"[REDACTED:{match.detector}]"))
            else:  # overlaps the last: it grows
                out[-1] = (out[-1][0], match.end, out[-1][2])
            position = match.end
        return out


def compile_rules(configs: Sequence[GuardrailConfig]) -> tuple[Rule, ...]:
    return tuple(Rule(config) for config in configs)
