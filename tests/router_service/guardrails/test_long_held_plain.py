"""Keys whose body is plain (base64 lines and line breaks only) and far longer than the pattern's
bounds: a scan jumps such a body in one pass (`_long_finds._PLAIN`) rather than matching the key
from within it again every 20,000 pieces, and a stream holding it skips its scans. Each is still
redacted whole, streamed as unary, whatever follows the plain stretch: its END line, prose after a
key cut short, lines ending in letters, a stretch pasted with spaces, blank lines, CRLF breaks,
runs of 6+ blank lines (a stream's read-on stopped at a run of 7+ line breaks and released the
rest of the key as prose), through a real gRPC stream too."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.router_service.guardrails.held_keys import grpc_answers
from tests.router_service.guardrails.test_long_held import _LINES, PROSE, RULE, _stream

pytestmark = pytest.mark.timeout(120)

_BEGIN = "-----BEGIN PRIVATE KEY-----"
_END = "-----END PRIVATE KEY-----"
_SHORT = "".join(f"{n:05d}Ab\n" for n in range(15_000))  # ~120,000 characters, 30,000 pieces
_LETTERED = "\n".join(line[:40] + "abcdefghijKLMNOPqrstuvwx" for line in _LINES[:40])
_SPACED = " ".join(_LINES[:40])


def _blank_runs(breaks: int, line_break: str = "\n") -> str:
    """The short lines with `breaks` line breaks (a run of blank lines) before every tenth."""
    return _SHORT.replace("0Ab", "\n" * breaks + "0Ab").replace("\n", line_break)


CASES = {
    "end_line": f"{PROSE}here:\n{_BEGIN}\n{_SHORT}{_END}\n{PROSE}",
    "cut_short": f"{PROSE}here:\n{_BEGIN}\n{_SHORT}That is all. {PROSE}",
    "crlf": f"{PROSE}here:\r\n{_BEGIN}\r\n{_SHORT.replace(chr(10), chr(13) + chr(10))}{_END}\r\n"
    + PROSE,
    "blank_lines": f"{PROSE}here:\n{_BEGIN}\n{_SHORT.replace('0Ab', chr(10) * 3 + '0Ab')}{_END}"
    + f"\n{PROSE}",
    "blank_line_runs": f"{PROSE}here:\n{_BEGIN}\n{_blank_runs(7)}{_END}\n{PROSE}",
    "blank_line_runs_cut_short": f"{PROSE}here:\n{_BEGIN}\n{_blank_runs(12)}That is all. {PROSE}",
    "blank_line_runs_crlf": f"{PROSE}here:\r\n{_BEGIN}\r\n{_blank_runs(8, chr(13) + chr(10))}{_END}"
    + f"\r\n{PROSE}",
    "blank_line_runs_json": '{"key": '
    + json.dumps(f"{_BEGIN}\n{_blank_runs(7)}{_END}")
    + "}\n"
    + PROSE,
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


async def test_a_long_key_with_runs_of_blank_lines_is_redacted_whole_in_a_grpc_stream(
    fake: FakeUpstream, keys_router: Any
) -> None:
    answers = await grpc_answers(fake, keys_router, CASES["blank_line_runs"])
    answer = answers.unary
    assert answer.count("[REDACTED:private_key]") == 1 and not _leaked(answer)
    assert answer.endswith(PROSE) and len(answer) < 4 * len(PROSE), answer[-200:]
    assert not _leaked(answers.streamed) and answers.streamed == answer
