"""Emails whose name part is longer than RFC 5321's 64 characters (`email`: a name padded past
64 hides no address): the pattern, where a long name part's find begins (`name_start`), and, for
a stream, where the text's end may still lie inside an address (`open_address`); and where a run
of characters ending somewhere begins (`run_start`, a key's read-on's too: `_long_finds`)."""

from __future__ import annotations

import re

__all__ = ["EMAIL", "LOOKBEHIND_CHARS", "SHORT_EMAIL", "name_start", "open_address", "run_start"]

# An email's name part: ASCII's letters, digits and `._%+-`, and the letters (and combining
# accents) of the alphabets written with spaces between words: Latin (but `×` and `÷`), Greek,
# Cyrillic, Armenian, Hebrew, Arabic, the Indic scripts', Georgian. Not Thai's on, nor symbols,
# CJK or fullwidth punctuation: a text written without spaces runs straight into an address
# (`请发送邮件至support@…`), whose find would take the words before it. Ranges, not `\w`:
# about as fast as ASCII alone (`\w` doubles the scan of prose).
_LOCAL = "A-Za-z0-9._%+\\-\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u0dff\u10a0-\u10ff\u1e00-\u1fff"
_DOMAIN = r"(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
# Possessive: `@` is not a name part's character, so giving some back never helps. With the
# letters of other scripts (`_LOCAL`): a name's accented letter does not begin the find after it
# (`josé.garcía@…` redacted whole, not all but `josé.garcí`). What a text without an `@` is
# scanned with (`Detector.lean`: it finds nothing there either, and costs less on prose).
SHORT_EMAIL = rf"(?<![{_LOCAL}])[{_LOCAL}]{{1,64}}+@{_DOMAIN}"
# The longest look back of the detectors' patterns (`EMAIL`'s, over 65 name characters before
# its `@`): a stream keeps that much of what it released before what it holds (`_text_screen`),
# else an address whose `@` comes right after a find released (a key's) is found in no stream.
LOOKBEHIND_CHARS = 65
# And a name part longer than 64: matched from its `@` (a bounded look back), its find begun
# where the name does (`name_start`): each `@` looks back over its own name only.
EMAIL = rf"{SHORT_EMAIL}|@(?<=[{_LOCAL}]{{{LOOKBEHIND_CHARS}}}@){_DOMAIN}"
# The last character before a name (none of its characters) and the run up to where it is asked.
_BEFORE_NAME = re.compile(f"[^{_LOCAL}](?=[{_LOCAL}]*+\\Z)")
_BEFORE_ADDRESS = re.compile(f"[^@{_LOCAL}](?=[@{_LOCAL}]*+\\Z)")
_NOT_ADDRESS = re.compile(f"[^@{_LOCAL}]")
_WINDOW = 4096


def run_start(before: re.Pattern[str], text: str, at: int, floor: int) -> int:
    """Where the run of characters that ends at `at` begins (`before`: the character before
    it), at `floor` or after: looked for back a window at a time (linear in the run)."""
    end = at
    while end > floor:
        low = max(floor, end - _WINDOW)
        found = before.search(text, low, end)
        if found is not None:
            return found.start() + 1
        end = low
    return floor


def name_start(text: str, at: int) -> int:
    """Where the find of an email matched at `at` begins: its name part's first character when
    the match begins at its `@` (a name longer than 64), else `at`."""
    return run_start(_BEFORE_NAME, text, at, 0) if text[at] == "@" else at


def open_address(text: str, start: int, cut: int) -> int | None:
    """Where an address the end of `text` may still be inside begins, when that is before `cut`
    (from `start` on): the run of name and domain characters (and `@`) that ends the text; None:
    a character no address holds comes after `cut` (in prose: at once)."""
    if _NOT_ADDRESS.search(text, max(start, cut)) is not None:
        return None
    return run_start(_BEFORE_ADDRESS, text, cut, start)
