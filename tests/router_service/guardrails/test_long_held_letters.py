"""Key material a stream released as prose, found through a real gRPC stream too: a long key
whose last lines (more than 8 of them, at the end of what a scan looks at) end in letters, a
key cut short whose last lines end in letters (unary left them too), and a key whose body is
one line of 72,000 characters (a single upstream delta past MAX_HELD_CHARS). Each is redacted
whole, in a stream as in a unary answer."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.guardrails._text_screen import MAX_HELD_CHARS
from tests.router_service.guardrails.held_keys import grpc_answers
from tests.router_service.guardrails.test_long_held import _LINES, PROSE, RULE, _stream

pytestmark = pytest.mark.timeout(120)

_LETTERS = "abcdefghijKLMNOPqrstuvwx"


def _key(lines: list[str], end: bool = True) -> str:
    body = "\n".join(lines)
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n" + ("-----END PRIVATE KEY-----" if end else "")


def _lettered(lines: list[str]) -> list[str]:
    return [line[:40] + _LETTERS for line in lines]


def _cut_short(lettered: int) -> str:
    lines = _LINES[:20]
    lines = lines[:-lettered] + _lettered(lines[-lettered:])
    return f"{PROSE}here:\n{_key(lines, end=False)}That is all. {PROSE}"


CASES = {
    # Every line ends in letters: past 20,000 characters the find as it stood ended 8 lines
    # before the text's end and the rest went out as prose.
    "all_lettered": f"{PROSE}here:\n{_key(_lettered(_LINES[:600]))}\n{PROSE}",
    "all_lettered_cut_short": f"{PROSE}here:\n{_key(_lettered(_LINES[:200]), False)}\n{PROSE}",
    "cut_short_2": _cut_short(2),
    "cut_short_9": _cut_short(9),
    # One base64 line of 72,000 characters.
    "one_line": f"{PROSE}here:\n{_key([''.join(_LINES[:1125])])}\n{PROSE}",
    "one_line_cut_short": f"{PROSE}here:\n{_key([''.join(_LINES[:1125])], False)}That is all.",
}
_SPACED = [f"{n:05d}IIEvQIBADANBgk" for n in range(12_000)]
# Keys of more than 20,000 pieces (a quoted line is 4: `>`, ` `, its base64, its line break),
# more than the pattern's bounds: a unary answer's find stopped there and the rest went out.
MANY_PIECES = {
    "quoted": PROSE + "\n" + "\n".join("> " + x for x in _key(_LINES).split("\n")) + f"\n{PROSE}",
    "short_lines": f"{PROSE}here:\n{_key([f'{n:05d}Ab' for n in range(12_000)])}\n{PROSE}",
    # Pasted with spaces for its line breaks (2 pieces a line): a read on began mid-run, its
    # rest too short for a body's run after a space, and the key's rest went out as prose.
    "spaces": f"{PROSE}here: " + " ".join(_key(_SPACED).split("\n")) + f"\n{PROSE}",
}


def _leaked(text: str) -> list[str]:
    """The key's lines (or 24-character stretches of its one line) the text shows."""
    return [line for line in _LINES if line[:24] in text or line[30:54] in text]


@pytest.mark.parametrize("name", CASES)
def test_a_key_is_redacted_whole_streamed_as_unary(name: str) -> None:
    text = CASES[name]
    unary = RULE.redact(text, Counter())
    assert unary is not None and unary.count("[REDACTED:private_key]") == 1
    assert not _leaked(unary) and _LETTERS not in unary
    for size in (7, 64, 1000, 80_000):
        assert _stream(text, size) == unary, size


@pytest.mark.parametrize("name", ["all_lettered", "cut_short_9", "one_line"])
async def test_a_key_is_redacted_whole_in_a_grpc_stream(
    fake: FakeUpstream, keys_router: Any, name: str
) -> None:
    # The fake streams a word a delta: the one line's key is a single delta of 72,000+.
    assert name != "one_line" or max(map(len, CASES[name].split())) > MAX_HELD_CHARS
    answers = await grpc_answers(fake, keys_router, CASES[name])
    answer = answers.unary
    assert answer.count("[REDACTED:private_key]") == 1 and not _leaked(answer)
    assert answers.streamed == answer and not _leaked(answers.streamed)


@pytest.mark.parametrize("name", MANY_PIECES)
def test_a_key_past_the_patterns_bounds_is_redacted_whole_in_unary_as_streamed(name: str) -> None:
    text = MANY_PIECES[name]
    unary = RULE.redact(text, Counter())
    assert unary is not None and unary.count("[REDACTED:private_key]") == 1
    assert unary.endswith(f"\n{PROSE}") and len(unary) < 4 * len(PROSE), unary[-200:]
    assert _stream(text, 1000) == unary


@pytest.mark.parametrize("name", MANY_PIECES)
async def test_a_key_past_the_patterns_bounds_is_redacted_whole_in_a_unary_grpc_answer(
    fake: FakeUpstream, keys_router: Any, name: str
) -> None:
    answers = await grpc_answers(fake, keys_router, MANY_PIECES[name])
    answer = answers.unary
    assert answer.count("[REDACTED:private_key]") == 1 and not _leaked(answer)
    assert "00Ab" not in answer and len(answer) < 4 * len(PROSE)
    assert answers.streamed == answer
