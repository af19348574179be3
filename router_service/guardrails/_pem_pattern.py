"""The PEM block's pattern (`private_key`: PEM's armor, PGP's and SSH2's too): its BEGIN and END
lines, armor headers, body, prose inside it and a key cut short, as `_long_finds` reads them."""

from __future__ import annotations

from router_service.guardrails._putty_keys import LINE_BREAK

__all__ = [
    "ARMOR_HEADER",
    "BEGIN",
    "BEGINS",
    "BODY",
    "CUT_SHORT",
    "DASH",
    "END",
    "ENDS",
    "HEADERS",
    "PEM",
    "PROSE",
]

# PEM's armor lines, OpenPGP's for an armored private key (`PGP PRIVATE KEY BLOCK`), and ssh.com's
# (RFC 4716's, `---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----`: four dashes and a space).
BEGIN = (
    r"(?:-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    r"|---- BEGIN SSH2 (?:[A-Z0-9]{1,16} ){0,2}PRIVATE KEY ----)"
)
END = (
    r"(?:-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    r"|---- END SSH2 (?:[A-Z0-9]{1,16} ){0,2}PRIVATE KEY ----)"
)
# How each armor line begins; a dash that begins none (a value's, a framed body's).
BEGINS = ("-----BEGIN ", "---- BEGIN SSH2 ")
ENDS = ("-----END ", "---- END SSH2 ")
DASH = r"-(?!----|--- (?:BEGIN|END) )"
# A block's body is PEM-shaped or no body: right after its BEGIN line, a few header lines (an
# encrypted key's `Proc-Type: 4,ENCRYPTED`, `DEK-Info: AES-128-CBC,…`: a name, a colon, a value
# without armor dashes), then base64 lines (line breaks, JSON's escaped ones too, blank lines). A
# run of spaces goes on only before a line break (indentation, trailing spaces), into a base64
# line (16+ such characters with a digit, `+` or `/` among them: prose words have none; a last
# line ending in `=` padding), or into a last line right before the END line: a key pasted with
# spaces for its line breaks. So prose after a mention of the BEGIN line is no body, and an END
# line far after it ends no block. Bounded (a 16 KiB RSA key is ~12 KiB of base64).
# (A value's backslash begins no line break: `C:\keys`. Any name's value to 128 characters, a
# named armor header's, `ARMOR_HEADER`, to 512: prose after a BEGIN line's mention is no body.)
_VALUE = rf"(?:[^\r\n\\\-]|\\(?![nr])|{DASH})"
HEADERS = rf"(?:[\r\n\\]{{1,4}}[A-Za-z][A-Za-z0-9\-]{{0,31}}:{_VALUE}{{0,128}}){{0,4}}"
BODY = (
    r"(?:[A-Za-z0-9+/=\r\n\\]|[ \t]{1,32}(?:(?=[\r\n\\])"
    r"|(?=[A-Za-z0-9+/]{16}|[A-Za-z0-9+/]{1,15}=)(?=[A-Za-z=]{0,80}[0-9+/]|[A-Za-z0-9+/]{1,15}=)"
    r"|(?=[A-Za-z0-9+/=]{1,80}[ \t]{0,32}(?:-----|---- )END ))){0,20000}"
)
# Clear prose: three words of letters, one of them of 2-3 (`see the vault`, `That is all`), or a
# sentence's punctuation then a space (`thanks! Bye`). Base64 is none, however a paste frames or
# groups it (groups of four, `> `/`# ` line prefixes, `<br>`, numbered lines, string literals).
_W = "[A-Za-z][a-z]{1,11}"
_S = "[A-Za-z][a-z]{1,2}"
PROSE = (
    rf"(?<![A-Za-z0-9+/=])(?:{_S} {_W} {_W}|{_W} {_S} {_W}|{_W} {_W} {_S})(?![A-Za-z0-9+/=])"
    r"|(?<=[A-Za-z])[,.!?;] [A-Za-z]"
)
# A value's continuation backslash: one or two (escaped), the `n` of a line break's escape after
# it (a literal not escaped, `\\\n` read as a backslash and an `n`), or, read as sent, a quote
# (`\\",` in a list of literals not escaped: `as_read` reads `\\"` as `""`). A literal's closing
# quote, then a list's comma or a concatenation's `+` (`"…\\n" +`, JavaScript's, Java's).
_CONTINUED = r'(?:\\{1,2}[nr]?|"(?="))'
_QUOTE_END = r"[\"'](?:,|[ \t]{0,8}\+)?"
# An armor header line (PEM's, OpenPGP's, RFC 4716's: `Comment:` may hold words) is taken whole,
# not read as prose, however the paste frames it (RFC 4716's value continued on the next line after
# a backslash too: JSON's `\\\n`, read as two of each, `as_read`, or as sent; a string literal's
# quotes around that line break); after an escape too (`\n\tComment:`, `\u0009Comment:` as sent:
# a stream reads the text as sent first, `Rule.opened`).
ARMOR_HEADER = (
    r"(?:(?<![A-Za-z0-9\-])|(?<=\\[nrt])|(?<=\\u[0-9A-Fa-f]{4}))"
    r"(?:Version|Comment|Subject|Hash|Charset|MessageID|Proc-Type|DEK-Info):"
    rf"(?:{_CONTINUED}(?:[ \t]{{0,8}}(?:[\r\n]|\\[rn]|{_QUOTE_END})){{1,6}}|{_VALUE}){{0,512}}"
)
# The BEGIN line through the first END line when no prose comes between (key material however it
# is framed); else (a key cut short, however framed) through the last base64 line before prose (a
# line's end after 16+ base64 characters with a digit, `+` or `/` among them: no mention's word
# nor code's identifier; prose may follow it on its line), a short last line framed alike and
# what a PEM-shaped body goes on with (line breaks, base64: any number of lines ending in letters,
# up to 20,000 characters; a key's last lines may all be such); else through the END line right
# after its PEM-shaped body, or to that body's end.
# (A header line, a base64 run whole at a time: no prose begins inside one.)
_NO_PROSE = rf"(?>{ARMOR_HEADER}|(?!{PROSE})(?:[A-Za-z0-9+/=]+|[^\-]|{DASH})){{0,20000}}"
_FRAMED = rf"{_NO_PROSE}?{END}"
_B64 = r"A-Za-z0-9+/=_\-"  # standard base64's alphabet and URL-safe's (`-`, `_`)
# A word of prose on the line after a key cut short (`That is all`, `Commit 3f2a…`): no body's
# line (looked for where a line begins only: a last line's base64 is taken whole).
_WORD = r"(?![\r\n\\]{0,4}[A-Z]?[a-z]{1,14} [^\s\-])"
# The last base64 runs of a key pasted with spaces for its line breaks, the text's end after them
# (a stream's: after a run whose last 16 characters are letters, as 1 in 28 are, more may come).
_LAST_RUNS = rf"(?>[{_B64}]{{1,80}}[ \t]{{1,32}}){{0,4}}[{_B64}]{{0,80}}"
# Or its line's last runs (16+ characters each, as no word of prose is; the last of them ending
# in 16 letters: the key's still), the line's end after them.
_LINE_RUNS = rf"(?:[ \t]{{1,32}}[{_B64}]{{16,80}}){{1,4}}(?=[ \t]{{0,32}}[\r\n])"
CUT_SHORT = (
    rf"{_NO_PROSE}(?<=[{_B64}]{{16}})(?<![A-Za-z=\-]{{16}})"
    rf"(?=[ \t]{{0,32}}(?:[\r\n\\\"'<]|\Z)|[ \t]{{1,32}}(?:{PROSE}|{_LAST_RUNS}\Z)|{_LINE_RUNS})"
    rf"(?:{LINE_BREAK}{_WORD}[{_B64}]{{1,15}}(?![{_B64}]))?"
    rf"(?:[{_B64}]|[\r\n\\]{_WORD}){{0,20000}}"
    rf"(?:[ \t]{{1,32}}[{_B64}]{{1,80}}\Z|{_LINE_RUNS})?"  # (a key pasted with spaces for breaks)
)
PEM = (
    f"{BEGIN}(?:{_FRAMED}|{CUT_SHORT}|{HEADERS}{BODY}"
    rf"(?:[ \t]{{0,32}}{END})?)"
)
