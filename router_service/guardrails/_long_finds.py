"""The detector whose finds may grow far past a stream's hold-back window (`_text_screen`): a
PEM block (`private_key`, PGP's and SSH2's armor too), from its BEGIN line to its END line (past
prose inside its body while the key goes on after it). Its pattern, where a long find ends
(`key_end`), and, for a stream, where the text's end may still lie inside one of its finds
(`open_key`): the stream holds its text from there, so what it releases is redacted as the
whole text is. (An email's long name part: `_emails`.)"""

from __future__ import annotations

import re

from router_service.guardrails._emails import run_start
from router_service.guardrails._pem_pattern import (
    ARMOR_HEADER,
    BEGIN,
    BEGINS,
    DASH,
    END,
    ENDS,
    HEADERS,
    PEM,
    PROSE,
)
from router_service.guardrails._putty_keys import LINE_BREAK, LINE_FRAME, PUTTY_KEY, open_putty

__all__ = [
    "GAP_HOLD_CHARS",
    "PRIVATE_KEY",
    "head_of",
    "key_closed",
    "key_end",
    "open_key",
]

_KEY = re.compile(PEM)
_BEGIN_LINE = re.compile(BEGIN)
# Prose inside a key's body (a line of words between its base64 lines): a find that ended at it
# goes on when, at most _GAP_CHARS after it, the key does: a whole body line (`_gap`: a run of 16+
# base64 characters, a digit, `+` or `/` among their first 96, alone on its line however framed,
# or followed by another run, a padded last one or the END line) or its END line; from there read
# as the key's continuation after its BEGIN line (`_past_prose`), so the block is redacted through
# its END line, prose and all (a key cut short: through its last body line). A token inside a
# sentence (a path, a commit hash) goes on none, nor anything past a JSON string's closing quote
# (its next member). Only a find with a body goes on (`_RUN`): the prose after a mere mention of
# the BEGIN line does not. A stream holds the text while such a run may come (the text's end
# right after a run: held).
_GAP_CHARS = 256
_RUN_ITSELF = (
    r"(?:(?=[A-Za-z0-9+/=]{0,95}[0-9+/])|(?=(?:[A-Z]*+[a-z]++[A-Z]){2}))"
    r"[A-Za-z0-9+/]{16}[A-Za-z0-9+/=]*+(?![^\s\"'\\<])"
)
# (After a line break as sent in a JSON string too, `\\n`: the text as sent, which a stream
# asks first (`Rule.opened`), holds the key open as the text read does.)
_BODY_RUN = rf"(?:(?<![^\s>#\"'])|(?<=\\[nrt])){_RUN_ITSELF}"
_LINE_FRAMED = r"[ \t]{0,32}(?:[>#][ \t]{0,4}){0,4}(?:[0-9]{1,6}[:.)][ \t]{0,2})?[\"']?"
_LINE_END = r"[ \t]{0,32}(?:[\"'](?:,|[ \t]{0,8}\+)?[ \t]{0,8})?(?:[\r\n<]|\\(?:[nr]|\Z)|\Z)"
_NEXT_RUN = (
    rf"(?:[ \t\r\n]{{1,32}}(?:{_BODY_RUN}|[A-Za-z0-9+/]{{1,80}}={{1,2}}(?![^\s\"'\\<])"
    rf"|[A-Za-z0-9+/=]{{0,80}}[ \t]{{0,32}}{END}|-{{1,5}}[ A-Z]{{0,40}}\Z)|[ \t\r\n]{{0,32}}\Z)"
)
_JSON_NEXT = r'\s{0,32}(?:[}\]]|,\s{0,32}"(?:[^"\\\r\n]|\\.){0,128}"\s{0,32}:)'
_IN_GAP = rf"(?:[^\-\"]|\"(?!{_JSON_NEXT})|{DASH}){{0,{_GAP_CHARS}}}?"
# A run ending its line goes on alone on it (`_alone`, after the match), or, in a key pasted
# with spaces for its line breaks, after prose too (a short last run after it: `QUJD`).
_LAST_SPACED = rf"(?:[ \t]{{1,32}}[A-Za-z0-9+/=]{{1,15}})?{_LINE_END}"
_GAP = re.compile(
    rf"{_IN_GAP}(?P<at>{_BODY_RUN}(?:(?={_NEXT_RUN})|(?P<eol>(?={_LAST_SPACED})))|{END})"
)
_FRAMED_ONLY = re.compile(rf"{_LINE_FRAMED}\Z")  # (indentation, `> `/`# `, a number, a quote)
_FRAME_CHARS = 64  # (a line's frame before its run; a line break, JSON's escaped one, `<br>`:)
_LINE_ENDS = ("\n", "\r", "\\n", "\\r", "<br>", "<br/>", "<br />")
_RIGHT_AFTER = re.compile(rf"[ \t\r\n>#\"']{{0,{_GAP_CHARS}}}(?P<at>{_BODY_RUN}|{END})")
_RUN = re.compile(r"[A-Za-z0-9+/=]{16}")
_HELD_RUN = re.compile(_BODY_RUN)
_END_LINE = re.compile(END)
_ENDED = re.compile(rf"(?:{END})\Z")
_END_LINE_CHARS = 96  # (an END line's longest: 9 + 3 names of 16 + `PRIVATE KEY BLOCK-----`)
# How far past a find a stream holds the text while a body run may still come after prose.
GAP_HOLD_CHARS = _GAP_CHARS + 97
# How much of the text after the prose a continuation reads first (4x as much while its find
# reaches the read's end, to 80,000: a longer body reads on as any key's does, `key_end`).
_SLICE_CHARS = 1024
# Or a PuTTY key file (`_putty_keys`).
PRIVATE_KEY = f"{PEM}|{PUTTY_KEY}"
# What may follow a block's find while the text's end may still make it longer: a few body lines
# however framed (a cut-short find ends before lines whose last 16 characters are letters, as 1
# in 28 of a key's are: the text's end may be after some), then any number of base64 runs and
# line breaks (a body past its find's bounds, its lines however many end in letters, or one
# line of any length: held, never released as prose; possessive, linear), a space run whose
# look ahead lacks text, the beginning of its END line; or a header line's name cut short.
# (A numbered line's number is base64 the find may end with: `864` of `864: …`.) A run of line
# breaks of any length (blank lines, raw or JSON-escaped) goes on a body, as the pattern's body
# does (`BODY`, `CUT_SHORT`): LINE_BREAK's 6 stopped a stream's read-on at 7 and leaked the rest.
_FRAME = rf"(?:{LINE_BREAK}|{LINE_FRAME}|[:.)][ \t]{{0,2}})"
_BREAKS = r"(?:[\r\n]|\\[nr])++"
_PENDING = re.compile(
    rf"(?>{_FRAME}?[A-Za-z0-9+/=]{{1,96}}){{0,8}}"
    rf"(?>(?:{LINE_BREAK})?[A-Za-z0-9+/=]{{1,96}}|{_BREAKS})*+{_FRAME}?"
    r"[ \t]{0,32}(?:[A-Za-z0-9+/=]{0,96}[ \t]{0,32})?"
    r"(?:-{1,5} ?(?:E(?:N(?:D(?: [A-Z0-9 ]{0,62}-{0,4})?)?)?)?)?\Z"
)
# What ends a block open before it (`key_closed`).
_HEADER_CHARS = 544  # (an armor header line is at most 18 + 1 + 512 characters long)
_UNFRAMED = re.compile(f"(?P<header>{ARMOR_HEADER})|{PROSE}|{END}")
_OPEN_HEADER = re.compile(BEGIN + HEADERS + r"[\r\n\\]{1,4}[A-Za-z][A-Za-z0-9\-]{0,31}\Z")
# A block's find this long may have stopped at its pattern's bounds (20,000 of its body's
# characters or pieces) with its body going on (`key_end`).
_BOUND_CHARS = 20_000
# A find's first characters a text read as its continuation is read after (`head_of`), and how
# far before a find's end that continuation begins (as a stream's window: `_text_screen`).
HEAD_CHARS = 2048
_RESUME_CHARS = 128
# That continuation begins where the run it falls in does (looked for this far back): a key
# pasted with spaces for its line breaks has runs of 16+ characters after its spaces, and the
# last characters of one, read after the head's space, were no body's (the rest went out).
_BEFORE_RUN = re.compile(r"[ \t\r\n](?=[A-Za-z0-9+/=]*+\Z)")
_RUN_CHARS = 96
# A plain body: base64 runs, line breaks between them (most keys as pasted; blank lines, however
# many in a row, as `_PENDING` reads a run of them). Every
# find's continuation holds it whole and `_PENDING` matches from anywhere in it to its end, so
# a scan jumps it in one pass of the regex engine's character-class loop instead of matching
# `_KEY` (~10 ms per 20,000 pieces) from within it again and again (`key_end`, `_open_block`).
_PLAIN = re.compile(r"(?:[A-Za-z0-9+/=]++|[\r\n]++(?=[A-Za-z0-9+/=]|\Z))*+")
# How much of a plain body before where it stops a key's read-on keeps: a continuation read
# from there sees the body's last lines as one read from anywhere before them would.
_PLAIN_KEPT = 4096


def open_key(text: str, start: int, cut: int, walks: list[str]) -> int | None:
    """Where a private key the end of `text` may still be inside begins (from `start` on), when
    that is before `cut`: a PEM block's (`_open_block`) or a PuTTY key file's (`open_putty`).
    `walks`: the stream's own walks past prose (`_open_past_prose`), kept by the caller."""
    block = _open_block(text, start, cut, walks)
    putty = open_putty(text, start, cut)
    if block is None or putty is None:
        return putty if block is None else block
    return min(block, putty)


def _open_block(text: str, start: int, cut: int, walks: list[str]) -> int | None:
    """Where a private key's block the end of `text` may still be inside begins (its BEGIN line,
    from `start` on), when that is before `cut`: its find reaches the end, or what follows it
    may still go on into its body or its END line. None once the END line came, or anything
    no body holds (prose after a mere mention of the BEGIN line: at once)."""
    if text.rfind("BEGIN ", start + 5, cut) < 0:
        return None  # (most texts)
    at = _last_begin(text, start, cut)
    if at < 0 or any(text.find(begin, at + 1) >= 0 for begin in BEGINS):
        return None  # (a later BEGIN's dashes end the block of an earlier one)
    line = _BEGIN_LINE.match(text, at)
    if line is None:
        return None  # (no BEGIN line: no find either)
    begun = line.end()
    if _plain_end(text, begun) == len(text):
        return at  # a plain body to the end: no END line nor prose, `_PENDING` after any find
    found = _KEY.match(text, at)
    if found is None or any(text.find(end, at, found.end()) >= 0 for end in ENDS):
        return None  # its block ended
    if len(text) - at <= 20_100 and _unframed(text, begun) is None:
        return at  # no prose (nor END line) yet: what follows may be a framed key's END line
    if _PENDING.match(text, found.end()) or _OPEN_HEADER.match(text, at):
        return at
    return at if _open_past_prose(text, at, begun, found.end(), walks) else None


# A stream's walks past prose (`_open_past_prose`, `walks`: the stream's own, never another
# stream's, each gone with its stream): a block's text from its BEGIN line to a step of that
# walk _WALK_MARGIN or more before the text's end (no later text changes a step before it), one
# per way the stream's text is read (as sent, `as_read`). Asked again as its text grows, the
# walk goes on from there, not from the find's end each time (linear, not square).
_WALKS_KEPT = 2
_WALK_MARGIN = 1024


def _open_past_prose(text: str, at: int, begun: int, end: int, walks: list[str]) -> bool:
    """Whether the end of `text` may still be inside the block from `at` (its BEGIN line ends at
    `begun`) whose find ends at `end` before prose: the key went on after the prose, up to the
    text's end or to where what follows may go on into its body; or a body run may still come
    (GAP_HOLD_CHARS after its body: `_past_prose`)."""
    grown = kept = end
    mine = next((w for w in walks if len(w) > end - at and text.startswith(w, at)), None)
    if mine is not None:
        grown = kept = at + len(mine)  # (this text's walk, asked again as it grew)
    start = kept
    while (step := _past_prose(text, at, grown)) is not None:
        grown = step[1]  # (prose inside its body: the key went on after it)
        if grown + _WALK_MARGIN <= len(text):
            kept = grown
    if kept > start:
        if mine is not None:
            walks.remove(mine)
        walks[: max(0, len(walks) - _WALKS_KEPT + 1)] = []
        walks.append(text[at:kept])
    if grown > end:  # (held however far its body is: a stream holds more, never less)
        if _ENDED.search(text, grown - _END_LINE_CHARS, grown) is not None:
            return False  # its block ended, after prose
        return _PENDING.match(text, grown) is not None or len(text) - grown <= GAP_HOLD_CHARS
    return len(text) - end <= GAP_HOLD_CHARS and _has_body(text, begun, end)


def _last_begin(text: str, start: int, cut: int) -> int:
    """Where the last armor BEGIN line's dashes in `text` from `start` before `cut` are (each of
    `BEGINS` has 5 characters before its `BEGIN `); -1: none. One look back per text (a scan
    per stream step: prose holds none)."""
    while (word := text.rfind("BEGIN ", start + 5, cut)) >= 0:
        at = word - 5
        if text.startswith(BEGINS[0], at) or text.startswith(BEGINS[1], at):
            return at
        cut = word + 5  # (a BEGIN without armor: looked before it)
    return -1


def head_of(found: str) -> str:
    """The first characters of a find (at most HEAD_CHARS) through their last line break
    (JSON's escaped one too): what the text after it is read after, as its continuation."""
    head = found[:HEAD_CHARS]
    escaped = head.rfind("\\n")
    line = max(head.rfind("\n") + 1, escaped + 2 if escaped >= 0 else 0)
    return head[:line] if line else head


def key_end(text: str, start: int, end: int) -> int:
    """Where the find of a private key matched from `start` to `end` ends: past `end` while its
    block's body goes on past the pattern's bounds (a find of 20,000+ characters before any END
    line), the text from a little before its end read after its head as its continuation, as a
    stream reads what follows a find it released in part (`_text_screen`, MAX_HELD_CHARS): so
    a unary answer's key of any length is redacted whole, as a stream's is; and past prose
    inside its body while the key goes on after it (`_past_prose`). Else `end`."""
    if not text.startswith(BEGINS, start):
        return end  # (a PuTTY key file's: bounded by its lines)
    head = head_of(text[start : start + HEAD_CHARS])
    begin = start
    while True:
        begin, end = _read_on(text, head, begin, end)
        step = _past_prose(text, start, end)
        if step is None:
            return end
        begin, end = step


def _read_on(text: str, head: str, begin: int, end: int) -> tuple[int, int]:
    """Where a key's find read from `begin` (its continuation's virtual start, `head` before
    it) to `end` ends once read on past the pattern's bounds (`key_end`), and that read's
    virtual start."""
    while end - begin >= _BOUND_CHARS and not any(text.find(e, begin, end) >= 0 for e in ENDS):
        # Read on from a little before the find's end, or, past a plain body's bulk, from a
        # little before where that body stops (each read before it would only reach further).
        resume = max(end, _plain_end(text, end) - _PLAIN_KEPT)
        resume = run_start(
            _BEFORE_RUN, text, resume - _RESUME_CHARS, resume - _RESUME_CHARS - _RUN_CHARS
        )
        found = _KEY.match(head + text[resume:])
        grown = -1 if found is None else found.end() - len(head) + resume
        if grown <= end:
            break
        begin, end = resume - len(head), grown
    return begin, end


def _past_prose(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A block's find from `start` to `end` that ended at prose inside its body, read on from
    the body run (or END line) at most _GAP_CHARS after it, as the key's continuation after its
    BEGIN line (a run of letters the pattern ends no find with: through that run): that read's
    virtual start and where it ends. None: the find ended (its END line), has no body and prose
    follows it (a mention of the BEGIN line), or no body run comes soon after it."""
    if _ENDED.search(text, max(start, end - _END_LINE_CHARS), end) is not None:
        return None  # (most finds)
    line = _BEGIN_LINE.match(text, start)
    if line is None:
        return None
    # No body: only a run right after it (prose first: a mention of the BEGIN line).
    body = _has_body(text, line.end(), end)
    gap = _gap(text, line.end(), end) if body else _RIGHT_AFTER.match(text, end)
    if gap is None:
        return None
    head, at = line.group() + "\n", gap.start("at")
    size = _SLICE_CHARS
    while (found := _KEY.match(head + text[at : at + size])) is not None:
        if found.end() < len(head) + size or at + size >= len(text) or size >= _BOUND_CHARS * 4:
            break  # (else it may go on past the slice: read a longer one)
        size *= 4
    grown = gap.end() if found is None else max(gap.end(), at + found.end() - len(head))
    return at - len(head), grown


def _gap(text: str, begun: int, end: int) -> re.Match[str] | None:
    """The first body run (or END line) at most _GAP_CHARS after prose at `end` that goes on a
    key whose BEGIN line ends at `begun` (`_GAP`, `_alone`). None: no such run comes soon."""
    spaced = text.startswith((" ", "\t"), begun)
    at = end
    while (gap := _GAP.match(text, at)) is not None and gap.start("at") <= end + _GAP_CHARS:
        at = gap.start("at")
        if spaced or gap.group("eol") is None or _alone(text, at):
            return gap
        at = gap.end("at")  # (a token ending a sentence's line: looked on after it)
    return None


def _alone(text: str, at: int) -> bool:
    """Whether only a line's frame (`_LINE_FRAMED`) comes before `at` on its line."""
    lo = max(0, at - _FRAME_CHARS)
    ends = [i + len(e) for e in _LINE_ENDS if (i := text.rfind(e, lo, at)) >= 0]
    return bool(ends) and _FRAMED_ONLY.match(text, max(ends), at) is not None


def _has_body(text: str, begun: int, end: int) -> bool:
    """Whether a block's find whose BEGIN line ends at `begun` holds a base64 run of 16 in its
    first HEAD_CHARS up to `end` (a key's body; a mention of its BEGIN line holds none)."""
    return _RUN.search(text, begun, min(end, begun + HEAD_CHARS)) is not None


def _plain_end(text: str, at: int) -> int:
    """Where the plain body (`_PLAIN`) that begins at `at` stops (`at`: none there)."""
    found = _PLAIN.match(text, at)
    return at if found is None else found.end()


def key_closed(text: str, at: int) -> bool:
    """Whether `text` from `at` holds what may end a block open before it: an END line, or
    prose (a character neither a body, a header nor an END line holds) with no body run in the
    text's last GAP_HOLD_CHARS (one there: the key may go on after the prose, `_open_past_prose`
    holds it still; a stream looks again when its wait ends, not every step: linear)."""
    found = _unframed(text, at)
    if found is None:
        return False
    if found.group().startswith(ENDS) or _END_LINE.search(text, found.end()) is not None:
        return True
    return _HELD_RUN.search(text, max(at, len(text) - GAP_HOLD_CHARS)) is None


def _unframed(text: str, at: int) -> re.Match[str] | None:
    """The first END line or prose in `text` from `at`, armor header lines passed over. Each
    holds a space: none in what follows (a body's base64 lines) is none of them, and the
    search begins where a header line holding the first space may begin (cheaper per chunk)."""
    space = text.find(" ", at)
    if space < 0:
        return None
    at = max(at, space - _HEADER_CHARS)
    while (found := _UNFRAMED.search(text, at)) is not None and found.lastgroup == "header":
        at = found.end()
    return found
