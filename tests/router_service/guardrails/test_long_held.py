"""A find still growing past MAX_HELD_CHARS held characters (a private key's body longer than
65,536 characters): replaced as it stands, then the text after it read as its continuation, so
nothing of the key streams out unredacted (it did: what came after the first 65,536 characters
was released as any text), in bounded memory and linear work."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from typing import Any

import pytest

from router_service.config import GuardrailConfig
from router_service.fake_upstream import FakeUpstream
from router_service.guardrails import Rule, TextScreen
from router_service.guardrails._text_screen import MAX_HELD_CHARS
from tests.router_service.guardrails.held_keys import grpc_answers
from tests.router_service.guardrails.test_answer_screen import _counting

pytestmark = pytest.mark.timeout(120)

PROSE = "The quick brown fox jumps over the lazy dog, then rests a while. "
RULE = Rule(
    GuardrailConfig.model_validate(
        {"name": "keys", "detect": ["private_key", "api_key", "email"], "action": "redact"}
    )
)
_LINES = [
    f"{n:05d}MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9U" for n in range(6000)
]


def _pem(lines: int, end: bool = True) -> str:
    body = "\n".join(_LINES[:lines])
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n" + ("-----END PRIVATE KEY-----" if end else "")


# Keys whose body is longer than MAX_HELD_CHARS (1,100 lines: ~72,000 characters).
LONG = {
    "pem": f"{PROSE}here:\n{_pem(1100)}\n{PROSE * 2}",
    "cut_short": f"{PROSE}here:\n{_pem(1100, end=False)}That is all. {PROSE}",
    "quoted": PROSE + "\n" + "\n".join("> " + x for x in _pem(1100).split("\n")) + f"\n{PROSE}",
    # Pasted with spaces for its line breaks: its body was found 20,000 characters far only.
    "spaces": f"{PROSE}here: {' '.join(_pem(1100).split(chr(10)))}\nThat is all. {PROSE}",
    "json": '{"note": "' + PROSE + '", "key": ' + json.dumps(_pem(1100)) + ', "x": 1}',
    "api_key_after": f"{PROSE}{_pem(1100, end=False)}sk-proj-A1b2C3d4E5f6G7h8I9j0K1\n{PROSE}",
}


def _stream(text: str, size: int, rule: Rule = RULE) -> str:
    screen = TextScreen((rule,), {})
    out = [screen.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + screen.feed("", final=True)


@pytest.mark.parametrize("text", LONG.values(), ids=LONG)
def test_a_key_longer_than_the_hold_is_redacted_whole_streamed_as_unary(text: str) -> None:
    assert len(text) > MAX_HELD_CHARS
    unary = RULE.redact(text, Counter())
    assert unary is not None and unary.count("[REDACTED:private_key]") == 1
    assert not [x for x in _LINES if x[:10] in unary] and "A1b2C3d4" not in unary
    for size in (7, 20, 1000, 30_000):
        assert _stream(text, size) == unary, size


def test_a_key_of_a_megabyte_streams_in_bounded_memory_and_linear_work() -> None:
    # ~1.2 MB of key: released (redacted) as it goes, never held whole; scans stay linear.
    # (A unary answer's find of a body stops after ~10,000 lines: no key is that long.)
    body = "\n".join(_LINES * 3)
    text = f"{PROSE}-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n{PROSE}"
    pieces = [text[i : i + 500] for i in range(0, len(text), 500)]
    rule = _counting("private_key")
    screen = TextScreen((rule,), {})
    tracemalloc.start()
    try:
        out = [screen.feed(piece) for piece in pieces]
        out.append(screen.feed("", final=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "".join(out) == f"{PROSE}[REDACTED:private_key]\n{PROSE}"
    assert peak < 8 * MAX_HELD_CHARS < len(text) // 2, peak  # (~5x: a held text's copies)
    assert rule.scanned < 12 * len(text)


@pytest.mark.parametrize("name", ["pem", "cut_short", "api_key_after"])
async def test_a_key_longer_than_the_hold_is_redacted_in_a_grpc_stream(
    fake: FakeUpstream, keys_router: Any, name: str
) -> None:
    answers = await grpc_answers(fake, keys_router, LONG[name])
    answer = answers.unary
    assert answer.count("[REDACTED:private_key]") == 1 and not [x for x in _LINES if x in answer]
    assert answers.chunks > 1000  # (one chunk a line of the key)
    assert answers.streamed == answer
