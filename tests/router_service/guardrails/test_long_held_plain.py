"""Keys whose body is plain (base64 lines and line breaks only) and far longer than the pattern's
bounds: a scan jumps such a body in one pass (`_long_finds._PLAIN`) rather than matching the key
from within it again every 20,000 pieces, and a stream holding it skips its scans. Each is still
redacted whole, streamed as unary, whatever follows the plain stretch: its END line, prose after a
key cut short, lines ending in letters, a stretch pasted with spaces, blank lines, CRLF breaks."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.router_service.guardrails.test_long_held import _LINES, PROSE, RULE, _stream

pytestmark = pytest.mark.timeout(120)

_BEGIN = "-----BEGIN PRIVATE KEY-----"
_END = "-----END PRIVATE KEY-----"
_SHORT = "".join(f"{n:05d}Ab\n" for n in range(15_000))  # ~120,000 characters, 30,000 pieces
_LETTERED = "\n".join(line[:40] + "abcdefghijKLMNOPqrstuvwx" for line in _LINES[:40])
_SPACED = " ".join(_LINES[:40])

CASES = {
    "end_line": f"{PROSE}here:\n{_BEGIN}\n{_SHORT}{_END}\n{PROSE}",
    "cut_short": f"{PROSE}here:\n{_BEGIN}\n{_SHORT}That is all. {PROSE}",
    "crlf": f"{PROSE}here:\r\n{_BEGIN}\r\n{_SHORT.replace(chr(10), chr(13) + chr(10))}{_END}\r\n"
    + PROSE,
    "blank_lines": f"{PROSE}here:\n{_BEGIN}\n{_SHORT.replace('0Ab', chr(10) * 3 + '0Ab')}{_END}"
    + f"\n{PROSE}",
    "lettered_tail": f"{PROSE}here:\n{_BEGIN}\n{_SHORT}{_LETTERED}\n\nThat is all. {PROSE}",
    "spaced_tail": f"{PROSE}here:\n{_BEGIN}\n{_SHORT}{_SPACED} {_END}\n{PROSE}",
    "api_key_after": f"{PROSE}{_BEGIN}\n{_SHORT}sk-proj-A1b2C3d4E5f6G7h8I9j0K1\n{PROSE}",
}


def _leaked(text: str) -> list[str]:
    """The key's short lines, lettered or spaced lines the text shows."""
    shown = [line for line in _SHORT.split("\n")[:-1] if line in text]
    return shown + [line for line in _LINES[:40] if line[:24] in text]


@pytest.mark.parametrize("name", CASES)
def test_a_long_plain_key_is_redacted_whole_streamed_as_unary(name: str) -> None:
    text = CASES[name]
    unary = RULE.redact(text, Counter())
    assert unary is not None and unary.count("[REDACTED:private_key]") == 1
    assert not _leaked(unary) and "abcdefghij" not in unary and "KEY-----" not in unary
    assert unary.endswith(PROSE) and len(unary) < 4 * len(PROSE) + 100, unary[-300:]
    for size in (64, 4096, 70_000):
        assert _stream(text, size) == unary, size
