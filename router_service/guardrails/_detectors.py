"""The built-in detectors: what each finds, as one regex alternative and an optional check.

Every pattern here runs on text a caller controls, so each is written to stay linear-time on
hostile input under Python's backtracking `re`: every repetition has an upper bound, and a
lookbehind lets a match begin only where a run of its characters begins (not inside one), so
the work per start is bounded and a scan is linear in the text (`test_detectors` checks that no
built-in has an unbounded repetition, and scans 1 MiB adversarial texts).

What each detector finds (README, "Guardrails", says the same to users):

- `api_key`: OpenAI `sk-…` / `sk-proj-…` and Anthropic `sk-ant-…` (20+ token characters, at
  least one a digit), AWS access key ids (`AKIA`/`ASIA` + 16), Google `AIza` + 35, GitHub
  `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + 36 and `github_pat_…`, Slack `xoxb-`/`xoxa-`/`xoxp-`
  tokens, and `Bearer <token>` (any case) with a token of 20+ characters holding a digit.
- `private_key`: a PEM, PGP or SSH2 private key block (PEM-shaped body: headers, base64 lines,
  spaces for line breaks) through the END line right after it (or to the body's end, however
  long; past prose inside a body going on), never a mention's prose (`_long_finds`); PuTTY's.
- `email`: `local@domain.tld` with a dotted domain and an alphabetic TLD of 2–24 letters (the
  local part's letters of the alphabets written with spaces between words, `_emails._LOCAL`),
  the local part however long (RFC 5321's 64 is no limit an attacker keeps to).
- `credit_card`: 13–19 digits, optionally grouped by spaces or dashes, beginning with an issuer
  digit 2–6 (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay) and passing the Luhn check;
  a card written as one followed by its expiry's month or its code is found (the card's digits),
  and one followed by a 2-digit number where no digit group comes before it.
- `phone`: international numbers written with a leading `+` (E.164, optionally grouped by spaces,
  dots, dashes or parentheses; 8–15 digits), and North American numbers written `(555) 123-4567`,
  `555-123-4567` or `555.123.4567`. Bare digit runs are not phones (too many ids look alike).
  Separators and digits after a number (`. 2 rings`, ` - 24/7`, ` (24 h)`) stay out of its find.

The detectors read a text `as_read`: a backslash escape (JSON's in a tool call's arguments, a
string literal's: `\\n`, `\\t`, `\\"`, `\\u00e9`…) as the character it stands for, so the `n` of a
line break hides no key beginning the next line (a letter would), nor begins an email's find.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from operator import add
from typing import Final, get_args

from router_service.config._guardrails import GuardrailDetector as DetectorName
from router_service.guardrails._card_runs import uniform_hits
from router_service.guardrails._emails import EMAIL, SHORT_EMAIL, name_start, open_address
from router_service.guardrails._long_finds import PRIVATE_KEY, key_closed, key_end, open_key

__all__ = [
    "DETECTORS",
    "CardScan",
    "Detector",
    "DetectorName",
    "as_read",
    "escape_start",
    "luhn_valid",
]


@dataclass(frozen=True, slots=True)
class Detector:
    name: DetectorName
    pattern: str  # one regex, without groups of its own that capture
    # A check of a match the regex cannot express (Luhn): how many of its characters are a
    # find (all, the part of it that is one, 0: none). None: every match counts whole.
    accept: Callable[[str], int] | None = None
    # Where a match's find begins (an email's long name, matched from its `@`); None: there.
    begin: Callable[[str, int], int] | None = None
    extend: Callable[[str, int, int], int] | None = None  # where a long key's find ends
    # Streams: where a find the text's end may still be inside begins (`Rule.opened`, with the
    # stream's own memo: `open_key`); whether text from an offset on ends one found open.
    opens: Callable[[str, int, int, list[str]], int | None] | None = None
    closes: Callable[[str, int], bool] | None = None
    # The pattern for a text without an `@` (its `@` alternatives left out); None: `pattern`.
    lean: str | None = None


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of ASCII digits (card numbers carry one). Summed as bytes (every second
    digit from the right doubled, its digits added, by a table), not digit by digit in Python: a
    text of digit groups has a candidate card at each group (`4 4 4 …`), each checked."""
    raw = digits.encode()
    # As ASCII each digit counts 48 more than its value: taken back once per digit.
    return (sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)) % 10 == 0


_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def _card(text: str, opens: bool = False) -> int:
    """How much of a run of digits is a card: all of it; else a card written as cards are,
    followed by what is pasted after one (`_PASTED`: `4111 1111 1111 1111 123`, whose 19 digits
    fail Luhn) or, where it `opens` its run (no digit group before it), by a 2-digit number
    (`… 1111 17 times`); else none (0)."""
    if luhn_valid(_digits(text)):
        return len(text)
    if not (text[4:5] in (" ", "-") or text[:13].isdigit()):
        return 0  # neither 4 digits and a separator, nor 13 digits: `_WRITTEN` takes neither
    pasted = _PASTED.match(text) or (_NUMBERED.match(text) if opens else None)
    return pasted.end() if pasted is not None and luhn_valid(_digits(pasted.group())) else 0


def _opens_run(text: str, at: int) -> bool:
    """Whether the digit group at `at` of `text` is the first of its run."""
    return at < 2 or text[at - 1] not in " -" or not text[at - 2].isdigit()


def _digits(text: str) -> str:
    return text.replace(" ", "").replace("-", "")


# A card within a longer run of digits: written as one (one run, groups of four, Amex's and
# Diners' 4-6-5 and 4-6-4) and followed by what follows one on a card (its expiry's month, `5`
# or `05`, the year after it or after a `/` out of the run; its 3-4 digit code). Any other
# prefix of a run (an IBAN's first groups, a list's first numbers) is no card, though a tenth of
# them pass Luhn.
_WRITTEN = r"(?:[0-9]{13,19}|[0-9]{4}(?:[ \-][0-9]{4}){3}|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5})"
_PASTED = re.compile(_WRITTEN + r"(?=[ \-](?:(?:0?[1-9]|1[0-2])(?:[ \-][0-9]{2})?|[0-9]{3,4})$)")
# A run that begins with a card may go on with any 2-digit number (a count, a line's number);
# one that begins with other groups (an IBAN's country code and check digits) does not.
_NUMBERED = re.compile(_WRITTEN + r"(?=[ \-][0-9]{2}$)")


# The group sizes of a run's candidate `_PASTED` may find a card in (a card's groups, then a
# month, a month and year, or a code): any other fails it without a look.
_PASTED_SIZES = frozenset(
    (*card, *after)
    for card in (*((n,) for n in range(13, 20)), (4, 4, 4, 4), (4, 6, 4), (4, 6, 5))
    for after in ((1,), (2,), (1, 2), (2, 2), (3,), (4,))
)
_PASTED_FIRST = frozenset(size for sizes in _PASTED_SIZES for size in sizes[:1])
# A run of digit groups (single spaces or dashes between them). Unbounded, but possessive: it
# never gives back, so a match is linear in what it takes (it is no detector's pattern).
_RUN = re.compile(r"[0-9]++(?:[ \-][0-9]++)*+")
_VALUE = bytes.maketrans(b"0123456789", bytes(range(10)))
_TWICE = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))
# A run is read this many characters at a time (candidates starting in them), and as many more
# as a candidate reaches past its start: 19 digits, 18 separators, the character after.
_BLOCK = 4096
_MARGIN = 64
_NONE = (1 << 62, 1 << 62)


class CardScan:
    """The cards of one text, in order (`next`): what `_card` accepts of each match of the
    `credit_card` pattern. A short run of digit groups has its few candidates checked as found;
    a long one (`4 4 4 …`, a candidate at each group) is read 4 KiB at a time, each candidate
    decided by sums made once per read (the Luhn sum of every prefix of its digits, both ways of
    doubling), `_card` called only on the few that pass Luhn or are shaped as `_PASTED` takes:
    a scan costs a few steps per group, not a regex search and a Luhn check."""

    __slots__ = (
        *("_at", "_bounds", "_count", "_digits", "_groups", "_hits", "_limit"),
        *("_sizes", "_starts", "_sums", "_tail", "_text"),
    )

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = self._limit = self._count = 0  # the block read: its run from `_at`
        self._starts: list[int] = []  # each group's offset from `_at`, then the run's end + 1
        self._bounds: list[int] = [0]  # each group's first digit (in `_digits`), then the end
        self._sizes: list[int] = []
        self._digits = ""
        self._sums: tuple[list[int], list[int]] = ([0], [0])
        self._hits: list[int] = []
        self._tail = self._groups = 0

    def next(self, position: int) -> tuple[int, int]:
        """(start, end) of the first card starting at `position` or after; `_NONE`: none."""
        while self._limit != _NONE[0]:
            if position < self._limit:
                found = self._in_block(position)
                if found is not None:
                    return found
                position = self._limit
            candidate = _CARD.search(self._text, position)
            if candidate is None:
                self._limit = _NONE[0]
                return _NONE
            start = candidate.start()
            end = _RUN.match(self._text, start, start + _MARGIN).end()  # type: ignore[union-attr]
            if end >= start + _MARGIN - 1:
                self._read(start)  # a long run: its candidates are decided by sums
                continue
            # A short one (most): its few candidates are checked one by one, as found.
            opens = _opens_run(self._text, start)  # its first candidate only may open it
            while candidate is not None:
                kept = _card(candidate.group(), opens)
                opens = False
                if kept:
                    return candidate.start(), candidate.start() + kept
                candidate = _CARD.search(self._text, candidate.start() + 1, end)
            position = end
        return _NONE

    def _read(self, at: int) -> None:
        text = self._text
        stop = min(len(text), at + _BLOCK + _MARGIN)
        end = _RUN.match(text, at, stop).end()  # type: ignore[union-attr]  # at a digit
        self._at = at
        # Cut short (it may go on): only its candidates that end well inside are read.
        self._limit = end if end < stop - 1 or stop == len(text) else at + _BLOCK
        groups = text[at:end].replace("-", " ").split(" ")
        self._sizes = sizes = list(map(len, groups))
        self._bounds = bounds = list(accumulate(sizes, initial=0))
        self._starts = list(map(add, bounds, range(len(bounds))))  # a separator per group
        self._count = bisect_left(self._starts, self._limit - at, 0, len(sizes))
        self._digits = digits = "".join(groups)
        raw = digits.encode()
        value, twice = raw.translate(_VALUE), raw.translate(_TWICE)
        even, odd = bytearray(value), bytearray(twice)  # the digits at even offsets kept
        even[1::2], odd[1::2] = twice[1::2], value[1::2]
        self._sums = (list(accumulate(even, initial=0)), list(accumulate(odd, initial=0)))
        self._hits, self._tail, self._groups = uniform_hits(
            sizes, digits, self._sums, self._count, _PASTED_SIZES
        )

    def _in_block(self, position: int) -> tuple[int, int] | None:
        first = bisect_left(self._starts, position - self._at, 0, self._count)
        hits = self._hits  # a block of one group size: its Luhn-passing candidates, found
        for group in hits[bisect_left(hits, first) :]:
            found = self._candidate(group, group + self._groups)
            if found is not None:
                return found
        bounds, sizes, digits, sums = self._bounds, self._sizes, self._digits, self._sums
        last = len(sizes)
        first = max(first, self._tail)
        end = first + 1
        for group in range(first, self._count):
            start = bounds[group]
            if digits[start] not in "23456":
                continue
            if end <= group:
                end = group + 1
            while end < last and bounds[end + 1] <= start + 19:
                end += 1
            stop = bounds[end]
            if not 13 <= stop - start <= 19:
                continue
            luhn = sums[(stop - 1) & 1]
            if (luhn[stop] - luhn[start]) % 10 and (
                sizes[group] not in _PASTED_FIRST or tuple(sizes[group:end]) not in _PASTED_SIZES
            ):
                continue
            found = self._candidate(group, end)
            if found is not None:
                return found
        return None

    def _candidate(self, group: int, end: int) -> tuple[int, int] | None:
        """The card `_card` finds in the candidate of groups `group` to `end` (not included)."""
        begin = self._at + self._starts[group]
        window = self._text[begin : self._at + self._starts[end] - 1]
        kept = _card(window, group == 0 and _opens_run(self._text, begin))
        return (begin, begin + kept) if kept else None


# A run of separators ("1  -  2") is prose with numbers in it, not a written number.
_SEPARATORS = re.compile(r"[ .\-]{2}")


def _phone(text: str) -> int:
    """How much of a run of digits and separators after a `+` is a phone number: all of it;
    else the longest part of it ending with a digit (a number followed by a sentence's end and
    a digit, a dash, more digits: `+1 415 555 0100. 2 rings`), one leaving no parenthesis
    open, else the longest (`+1 (415 555 0100`: the `(` is its own); else none (0). One pass
    back from its end (a text of `+` numbers has a candidate at each)."""
    if not text.startswith("+"):
        return len(text)  # the North American forms are exact in the regex
    double = _SEPARATORS.search(text)
    clear = len(text) if double is None else double.start() + 1  # ends before a double
    digits = sum(map(str.isdigit, text))
    if 8 <= digits <= 15 and clear == len(text) and _closed(text, len(text)):
        return len(text)
    longest = 0
    for end in range(len(text), 1, -1):
        if end == len(text) or (text[end - 1].isdigit() and not text[end].isdigit()):
            if digits < 8:
                break
            if digits <= 15 and end <= clear:
                if _closed(text, end):
                    return end
                longest = longest or end
        digits -= text[end - 1].isdigit()
    return longest


def _closed(text: str, end: int) -> bool:
    """Whether each parenthesis opened before `end` is closed there: one left open is the
    note after the number (`+1 415 555 0100 (24 h)`), not its area code (`+49 (30) 1234`). A
    `)` with none open closes one opened before the `+` (`(+44) 20 7946 0958`): not counted."""
    opened = text.find("(", 0, end)
    if opened < 0:
        return True
    opens, closes = text.count("(", opened, end), text.count(")", opened, end)
    if opens > closes or opens == 1:  # most: `… 0100 (24`, `+49 (30) 1234`
        return opens <= closes
    depth = 0
    for char in text[opened:end]:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
    return depth == 0


_TOKEN = r"[A-Za-z0-9_\-]"
_BEARER = "".join(f"[{c.upper()}{c}]" for c in "bearer")
# Each alternative begins with its literal and only then looks behind it (the same check as a
# lookbehind in front): a pattern whose alternatives all begin with a few known characters lets
# `re` skip every other position without entering the pattern, several times faster on prose.
_API_KEY = "|".join(
    (
        # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-) and Anthropic (sk-ant-…): the body holds
        # a digit, so `sk-` before hyphenated prose is not one.
        rf"sk-(?<!{_TOKEN}sk-)(?=[A-Za-z_\-]{{0,200}}[0-9]){_TOKEN}{{20,200}}(?!{_TOKEN})",
        r"A[KS]IA(?<![A-Z0-9]A[KS]IA)[A-Z0-9]{16}(?![A-Z0-9])",
        rf"AIza(?<!{_TOKEN}AIza){_TOKEN}{{35}}(?!{_TOKEN})",
        r"gh[pousr]_(?<![A-Za-z0-9_]gh[pousr]_)[A-Za-z0-9]{36}(?![A-Za-z0-9])",
        r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])",
        r"xox[bap]-(?<![A-Za-z0-9\-]xox[bap]-)[0-9]{6,20}-[A-Za-z0-9\-]{6,250}(?![A-Za-z0-9\-])",
        # HTTP's auth scheme, any case (`AUTHORIZATION: BEARER …` as a log shouts it).
        rf"{_BEARER}(?<![A-Za-z0-9]{_BEARER})[ \t]{{1,4}}(?=[A-Za-z._~+/\-]{{0,500}}[0-9])"
        r"[A-Za-z0-9._~+/\-]{20,500}={0,2}(?![A-Za-z0-9._~+/=\-])",
    )
)
_CREDIT_CARD = r"[2-6](?<![0-9][2-6])(?:[ \-]?[0-9]){12,18}(?![0-9])"
_CARD = re.compile(_CREDIT_CARD)
_PHONE = "|".join(
    (
        r"\+(?<![A-Za-z0-9+]\+)[1-9][0-9 .()\-]{5,22}[0-9](?![0-9])",
        r"\((?<![A-Za-z0-9(]\()[0-9]{3}\) ?[0-9]{3}[\-.][0-9]{4}(?![0-9])",
        r"[0-9](?<![A-Za-z0-9(][0-9])[0-9]{2}[\-.][0-9]{3}[\-.][0-9]{4}(?![0-9])",
    )
)

# A backslash escape of JSON (and of most languages' string literals).
_ESCAPE = re.compile(r'\\(?:u[0-9A-Fa-f]{4}|[nrtbf"/\\])')
# What each stands for, as many times as the escape is long: the same offsets as the text.
_READ_AS = {"n": "\n\n", "r": "\r\r", "t": "\t\t", "b": "\b\b", "f": "\f\f", '"': '""', "/": "//"}
_TWO_CHARS = tuple(("\\" + letter, stands_for) for letter, stands_for in _READ_AS.items())
_UNICODE = re.compile(r"\\u[0-9A-Fa-f]{4}")
_PAIRED = "\uffff"  # a noncharacter: what marks an escaped backslash's two while they are read


def as_read(text: str) -> str:
    """`text` as the detectors read it: each backslash escape (`\\n`, `\\"`, `\\u00e9`…) as what it
    stands for, repeated to the escape's length (a find's offsets are the text's own); `\\u`
    escapes (non-ASCII or control characters, in JSON) as NULs, which no detector's run holds.
    A text without a backslash (most) is returned as it is."""
    if "\\" not in text:
        return text
    if _PAIRED in text:  # no mark for escaped backslashes: one by one, as slowly
        return _ESCAPE.sub(_read, text)
    # Escaped backslashes marked first: each backslash left begins the escape it is the start
    # of, so each kind is replaced in one pass of its own (no call per escape: several times
    # faster on code, which holds an escape a line).
    read = text.replace("\\\\", _PAIRED * 2)
    for escape, stands_for in _TWO_CHARS:
        read = read.replace(escape, stands_for)
    return _UNICODE.sub("\0" * 6, read).replace(_PAIRED, "\\")


def escape_start(text: str, at: int) -> int:
    """Where the backslash escape that offset `at` of `text` falls inside begins (`text` read
    from its start, as `as_read` does); `at` itself when it begins none (most offsets: no
    backslash in the 5 characters before it). A text cut there is read as the whole is."""
    if text.find("\\", max(0, at - 5), at) < 0:
        return at
    for escape in _ESCAPE.finditer(text, 0, at + 5):
        if escape.end() > at:
            return min(escape.start(), at)
    return at


def _read(escape: re.Match[str]) -> str:
    found = escape.group()
    return "\0" * 6 if len(found) == 6 else _READ_AS.get(found[1], found)


def _opens_address(text: str, start: int, cut: int, _walks: list[str]) -> int | None:
    return open_address(text, start, cut)  # (an address keeps no stream state: `open_key`'s)


DETECTORS: Final[dict[DetectorName, Detector]] = {
    d.name: d
    for d in (
        Detector("private_key", PRIVATE_KEY, opens=open_key, closes=key_closed, extend=key_end),
        Detector("api_key", _API_KEY),
        Detector("email", EMAIL, begin=name_start, opens=_opens_address, lean=SHORT_EMAIL),
        Detector("credit_card", _CREDIT_CARD, _card),
        Detector("phone", _PHONE, _phone),
    )
}
assert set(DETECTORS) == set(get_args(DetectorName))
