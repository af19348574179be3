"""One streamed text screened as it goes (`TextScreen`): what a chat stream's choices
(`_stream.StreamScreen`) and a streamed transcript hold back and release, finds replaced.
The module docstring of `_stream` says how much is held, and why."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from router_service.guardrails._citations import StreamEdits
from router_service.guardrails._detectors import DETECTORS, escape_start
from router_service.guardrails._emails import LOOKBEHIND_CHARS
from router_service.guardrails._finds import Found, counted
from router_service.guardrails._long_finds import head_of
from router_service.guardrails._rules import Rule

__all__ = ["HOLD_BACK_CHARS", "MAX_HELD_CHARS", "RELEASE_STEP_CHARS", "TextScreen"]

# What a stream's text holds back: a find of at most this many characters is caught whole.
HOLD_BACK_CHARS = 128
# Text is released once this many characters more than that are held (a scan per step, not
# per delta: a token is a few characters). So a text holds back 128 to 159 characters.
RELEASE_STEP_CHARS = 32
# Released text kept before what is held, for the detectors' lookbehinds.
_CONTEXT_CHARS = LOOKBEHIND_CHARS
# The detectors `Rule.opened` reports a find of while it may grow: one it did not report has
# ended (a PEM block past its END line), so a stream waits for it no longer than the window.
_OPENS = frozenset(name for name, detector in DETECTORS.items() if detector.opens is not None)
# How far before the text looked at an END line that ends a held block may have begun.
_END_LINE_CHARS = 80
# A find still growing past this many held characters is replaced as it stands, all but the
# window at the text's end, and the text after it screened as its continuation: read after the
# find's first characters (`_head`: `head_of`, through their last line break) in place
# of what was released, so a key's body however long is redacted whole, in bounded memory.
MAX_HELD_CHARS = 65_536


@dataclass(slots=True)
class _Span:
    """Overlapping finds, merged (absolute offsets in the text as the upstream sent it)."""

    start: int
    end: int
    finds: list[tuple[Rule, str]] = field(default_factory=list)
    continued: bool = False  # the find released as it stood goes on (`MAX_HELD_CHARS`)


class TextScreen:
    """One streamed text: `feed` it each delta; what comes back may be released."""

    __slots__ = (
        "_base",
        "_closes",
        "_done",
        "_found",
        "_head",
        "_raw",
        "_redacted",
        "_rules",
        "_signed",
        "_wait",
        "_walks",
        "blocked",
        "edits",
    )

    def __init__(self, rules: Sequence[Rule], found: Found) -> None:
        self._rules = rules
        self._found = found
        # The raw text from offset `_base`: released text kept as context (lookbehinds, a find
        # that began in it), then what is held from `_done` on.
        self._raw = ""
        self._base = 0
        self._done = 0
        # The first characters of a find released while it went on: read before `_raw` (which
        # then begins at `_done`) while the find may go on, in place of the text released.
        self._head = ""
        # While an open find holds the text back, the next scan waits for this offset (see
        # `_next_scan`): a long find costs linear work, not square.
        self._wait = 0
        # While a find `Rule.opened` reported holds the text back: what in later text ends it,
        # where the hold begins and where the text was looked at up to (see `_closed`).
        self._closes: tuple[Callable[[str, int], bool], int, int] | None = None
        self.blocked: tuple[str, str] | None = None  # (rule, detector) once a block rule hit
        self.edits = StreamEdits()  # each find replaced, for the annotations that cite it
        self._redacted: tuple[str, str] | None = None  # (rule, detector) of the first find
        self._signed = False
        self._walks: list[str] = []  # this stream's walks past a key's prose (`open_key`)

    def sign(self) -> None:
        """The text is signed (a piece of its reasoning entry carries a signature): a find in it
        blocks, whatever its rule's action (a rewritten text would fail its signature), one
        replaced already too (as a unary answer's signed block is withheld whole)."""
        self._signed = True
        if self.blocked is None:
            self.blocked = self._redacted

    def feed(self, text: str, *, final: bool = False) -> str:
        """Take the next delta; return the text that may be released now, finds replaced
        ("" while held; always "" once blocked). `final`: the text is complete, flush it."""
        if self.blocked is not None:
            return ""
        self._raw += text
        end = self._base + len(self._raw)
        held = end - self._done
        forced = not final and held > MAX_HELD_CHARS
        if held == 0 or (
            not (final or forced)
            and (
                held < HOLD_BACK_CHARS + RELEASE_STEP_CHARS
                or (end < self._wait and not self._closed(end))
            )
        ):
            return ""
        self._closes = None
        opened = end  # where a find the text's end may still be inside begins
        settled = False  # a forced release with no find the text's end may still be inside
        if forced:  # all but the window, a find it cuts into replaced as it stands
            self._wait = 0
            cut = self._base + escape_start(self._raw, end - HOLD_BACK_CHARS - self._base)
            at, closes = self._opened(cut)
            opened = cut if closes is None else at  # (a key's block, not an address's name)
            settled = closes is None
        else:
            cut = end if final else self._open_cut(end)
            if cut == self._done:  # a find open from what is held on: nothing to release yet
                return ""  # (no scan: a long key's held body costs one per forced release)
        spans, cut, head = self._to_release(cut, end, opened, settled)
        out = self._released(spans, cut)
        self._done = self.edits.released = cut
        if head:  # read before the text from `cut` on, in place of what was released
            keep_from = cut
        else:
            keep_from = max(self._base, cut - _CONTEXT_CHARS)
            # Not inside an escape: the context is read as the whole text is (`\\n`: no `\n`).
            keep_from = self._base + escape_start(self._raw, keep_from - self._base)
        self._raw = self._raw[keep_from - self._base :]
        self._base = keep_from
        self._head = "" if final else head
        return out

    def _to_release(
        self, cut: int, end: int, opened: int, settled: bool
    ) -> tuple[list[_Span], int, str]:
        """The spans to release up to `cut`, where the release stops (before a find still
        open), and the head to read the text after it with: a forced release's find cut
        into (`MAX_HELD_CHARS`; `opened`: where the one the end may still be inside begins,
        its find as it stands ending before `cut` too), or the one that holds the text at
        `_done` still. A forced release that is `settled` (no find open at the end) releases a
        block's find that ended in the window whole, through its END line, never cut inside."""
        forced = opened < end
        # A find open at the end holds the text back from `cut` (`_open_cut`): a find it cuts
        # into waits as long (a BEGIN line before a run of dashes an address may hold).
        waits = self._wait if cut < end - HOLD_BACK_CHARS else 0
        spans = []
        for span in self._spans():
            if forced and span.start <= opened < span.end:  # (what follows it goes on with it)
                if settled and span.start < cut and all(d in _OPENS for _, d in span.finds):
                    spans.append(span)  # ended (else `_opened` would say so): out whole
                    cut = span.end
                    continue
                span.end = max(span.end, end)
            if span.end > cut:  # still open: hold back from where it starts
                if span.start < cut and forced:  # replaced as it stands, then continued
                    spans.append(_Span(span.start, cut, span.finds, span.continued))
                    if span.continued:
                        return spans, cut, self._head
                    return spans, cut, head_of(self._slice(span.start, cut))
                if span.start < cut:
                    cut, self._closes = span.start, None
                    self._wait = max(
                        waits,
                        span.end + HOLD_BACK_CHARS  # ended: out once the window passed it
                        if all(d in _OPENS for _, d in span.finds)
                        else self._next_scan(span, end, cut),
                    )
                break
            spans.append(span)
        # A head stays while nothing was released: what holds the text may be its find's.
        return spans, cut, self._head if cut == self._done else ""

    def _open_cut(self, end: int) -> int:
        """Where a release stops short of the text's `end`: its last HOLD_BACK_CHARS, and
        from where a find the end may still be inside begins (a PEM block before its END line,
        an email's long name part before its `@`), looked at again as an open span is."""
        cut, closes = self._opened(end - HOLD_BACK_CHARS)
        if closes is not None:
            self._closes = (closes, cut, end)
        if cut < end - HOLD_BACK_CHARS:
            self._wait = self._next_scan(_Span(cut, end), end, cut)
        return cut

    def _opened(self, cut: int) -> tuple[int, Callable[[str, int], bool] | None]:
        """Where the first find the text's end may still be inside begins, if before `cut`
        (else `cut`), and what in later text ends it."""
        text, lead = self._head + self._raw, len(self._head)
        start = 0 if lead else self._done - self._base
        closes = None
        for rule in self._rules:
            opened = rule.opened(text, start, cut - self._base + lead, self._walks)
            if opened is None:
                continue
            # (One that begins in the head: the find released as it stood, still open.)
            at = max(self._done, self._base + opened[0] - lead)
            if at < cut:
                cut, closes = at, opened[1]
        return cut, closes

    def _closed(self, end: int) -> bool:
        """Whether the text that came since the hold was looked at (and the few characters
        before, where an END line may have begun) ends the find holding it: it is looked at
        again now (its last RELEASE_STEP_CHARS after the scan before), not when its wait ends."""
        if self._closes is None:
            return False
        closes, start, looked = self._closes
        if end < looked + RELEASE_STEP_CHARS:
            return False
        self._closes = (closes, start, end)
        return closes(self._raw, max(start, looked - _END_LINE_CHARS) - self._base)

    @staticmethod
    def _next_scan(span: _Span, end: int, cut: int) -> int:
        """Where an open find is looked at again: where it is final if it grows no more; when
        it is long already, not before the held text grew by half again."""
        at = span.end + HOLD_BACK_CHARS
        if end - cut > 2 * HOLD_BACK_CHARS:
            at = max(at, end + (end - cut) // 2)
        return at

    def _released(self, spans: list[_Span], cut: int) -> str:
        """The held text up to `cut`, each span replaced; a block rule's find blocks instead."""
        for span in spans:
            for rule, detector in span.finds:
                if rule.action == "block" or self._signed:
                    counted(self._found, rule.name, detector)
                    self.blocked = (rule.name, detector)
                    return ""
        pieces: list[str] = []
        position = self._done
        for span in spans:
            pieces.append(self._slice(position, span.start))
            if span.continued:  # its find's marker, released before, stands for it too
                first, _, marker = self.edits.finds[-1]
                self.edits.finds[-1] = (first, span.end, marker)
                position = span.end
                continue
            pieces.append(marker := f"[REDACTED:{span.finds[0][1]}]")
            self.edits.add(span.start, span.end, marker)
            if self._redacted is None:
                self._redacted = (span.finds[0][0].name, span.finds[0][1])
            position = span.end
            for rule, detector in span.finds:
                counted(self._found, rule.name, detector)
        pieces.append(self._slice(position, cut))
        return "".join(pieces)

    def _slice(self, start: int, end: int) -> str:
        return self._raw[start - self._base : end - self._base]

    def _spans(self) -> Iterator[_Span]:
        """The finds that reach past what was released (clipped to it), merged where they
        overlap, in order."""
        finds = sorted(self._finds(), key=lambda f: (f[0], -f[1]))
        span: _Span | None = None
        for start, end, rule, detector, continued in finds:
            if span is not None and start < span.end:
                span.end = max(span.end, end)
                span.finds.append((rule, detector))
                span.continued = span.continued or continued
                continue
            if span is not None:
                yield span
            span = _Span(start, end, [(rule, detector)], continued)
        if span is not None:
            yield span

    def _finds(self) -> Iterator[tuple[int, int, Rule, str, bool]]:
        # The built-ins' finds from what is held on, the context before read as such: a find
        # in a run of digit groups moves where the next begins, so a scan from the context's
        # start (inside a find released) would not find what the whole text's scan does.
        # After a head, from its start: a find that begins in it goes on from `_done`.
        text, lead = self._head + self._raw, len(self._head)
        start = 0 if lead else self._done - self._base
        for rule in self._rules:
            for match in rule.matches(text, start):
                end = self._base + match.end - lead
                if end > self._done:  # else released (or replaced) already
                    begin = max(self._base + match.start - lead, self._done)
                    yield begin, end, rule, match.detector, match.start < lead
