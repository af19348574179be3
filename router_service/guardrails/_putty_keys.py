"""PuTTY's private key files (`.ppk`, formats 1-3), a `private_key` find beside PEM's blocks: from
the `PuTTY-User-Key-File-<n>: <algorithm>` line through its header lines (`Encryption:`,
`Comment:`, `Public-Lines:`, `Private-Lines:`, format 3's `Key-Derivation:`/`Argon2-…:`) and
base64 lines to its `Private-MAC:` line (format 1's `Private-Hash:`), or (a file cut short) to
its last such line. Bounded repetitions only (linear on hostile text, as `_detectors` requires);
lines end in line breaks (JSON's escaped ones as sent too: `open_putty` reads the text as sent),
each line framed alike (quoted, commented, numbered, indented)."""

from __future__ import annotations

import re

__all__ = ["LINE_BREAK", "LINE_FRAME", "PUTTY_KEY", "open_putty"]

_FIRST = "PuTTY-User-Key-File-"
# A line break (after trailing spaces; HTML's `<br>`; a string literal's quotes, `",` of a list
# of them), then how a paste may frame each line (`> ` quoted, `# ` commented, `- ` listed,
# `12: ` numbered, indented): none of these a base64 line or a header's name begins with.
# Or (a file pasted where its line breaks became spaces) a space run before a header line or a
# base64 line (16+ characters with a digit, `+` or `/` among them, or a last one ending in `=`
# padding: prose words are none), and a header's value stops before the next header's name.
_NAMES = "(?:Encryption|Comment|Public-Lines|Private-Lines|Key-Derivation|Argon2-[A-Za-z]{1,16}):"
_SPACED = (
    rf"[ \t]{{1,8}}(?={_NAMES}|Private-(?:MAC|Hash):|(?=[A-Za-z0-9+/]{{16}}|[A-Za-z0-9+/]{{1,15}}=)"
    r"(?=[A-Za-z=]{0,80}[0-9+/]|[A-Za-z0-9+/]{1,15}=))"
)
# What a pasted line begins with: a quote's `>`, a comment's `#`, a list's `-`/`*`, a number,
# an indent.
LINE_FRAME = r"(?:[>#*\-]{1,3}[ \t]{0,2}|[0-9]{1,4}[:.)][ \t]{0,2}|[ \t]{1,8})"
LINE_BREAK = (
    r"[ \t]{0,8}(?:[\r\n]|\\[nr]?|<br ?/?>|[\"'](?:,|[ \t]{0,8}\+)?){1,6}"
    f"{LINE_FRAME}?"
)
_BREAK = f"(?:{LINE_BREAK}|{_SPACED})"
_LINE = (
    rf"{_BREAK}(?:{_NAMES}(?:(?!{_SPACED})[^\r\n\\<\"']){{0,128}}"
    rf"|[A-Za-z0-9+/=]{{1,128}}(?=[ \t]{{0,8}}(?:[\r\n\\<\"']|\Z)|{_SPACED}))"
)
_MAC = rf"{_BREAK}Private-(?:MAC|Hash):[ \t]{{0,8}}[0-9A-Fa-f]{{1,128}}"
PUTTY_KEY = (
    rf"{_FIRST}[1-9]:(?<![A-Za-z0-9\-]{_FIRST}[1-9]:)[ \t]{{0,8}}[A-Za-z0-9@.\-]{{1,64}}"
    rf"(?:{_LINE}){{0,400}}(?:{_MAC})?"
)
_KEY = re.compile(PUTTY_KEY)
_MAC_LINE = re.compile(_MAC)
# What may follow a file's find while more text may make it longer: a line break, then (no break
# after it yet) a line cut short; a space run and a word cut short (spaces for line breaks); or a
# line break cut short.
_PENDING = re.compile(
    rf"(?:{_BREAK}[^\r\n\\]{{0,140}}|[ \t]{{1,8}}[^ \t\r\n\\]{{0,140}})?"
    r"[ \t]{0,8}(?:\\|<(?:br? ?/?)?|[\"'],?)?\Z"
)


def open_putty(text: str, start: int, cut: int) -> int | None:
    """Where a PuTTY key file the end of `text` may still be inside begins (from `start`,
    before `cut`): its find reaches the end (its MAC's digits may go on), or, its MAC line not
    come yet, what follows it is a line not ended yet. None: none (a mere mention: at once)."""
    at = text.rfind(_FIRST, start, cut)
    if at < 0:
        return None
    found = _KEY.match(text, at)
    if found is None:  # (its first line cut short: the window at the end holds it)
        return None
    if found.end() == len(text):
        return at
    if _MAC_LINE.search(text, at, found.end()) is None and _PENDING.match(text, found.end()):
        return at
    return None
