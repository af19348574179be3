"""A key whose body has prose inside it (a line of words between its base64 lines): a unary
answer's find ended at the prose and showed the key lines after it (a fuzzer's case: ~158 KB of
them), while a stream of a long key redacted them. The block is redacted from its BEGIN line
through its END line (a key cut short: through its last body line), prose and all, unary and
streamed alike. Keys made by a seeded generator (`prose_key`), framed every way a model pastes
one: letter-only lines, one-line bodies, spaces for line breaks, `> ` quotes, CRLF, blank lines."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.router_service.guardrails.held_keys import grpc_answers
from tests.router_service.guardrails.test_long_held import PROSE, RULE, _stream

pytestmark = pytest.mark.timeout(300)

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LETTERS = _B64[:52]
_WORDS = ["see", "the", "vault", "for", "rest", "of", "it", "This", "is", "key", "and", "more"]
_ENDINGS = ["", ".", ",", "!", ":"]


@dataclass(frozen=True)
class ProseKey:
    """An answer holding a key with prose inside its body, and the key's base64 lines."""

    text: str
    lines: tuple[str, ...]


def _line(rng: random.Random, lettered: bool) -> str:
    alphabet = _LETTERS if lettered else _B64
    line = "".join(rng.choice(alphabet) for _ in range(rng.randint(24, 64)))
    return line if lettered else line[:8] + rng.choice("0123456789+/") + line[9:]


def _prose(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 8))]
    return " ".join(words) + rng.choice(_ENDINGS)


def _body(rng: random.Random, lines: list[str]) -> list[str]:
    """The key's lines with prose lines (and blank lines) among them, never before the first."""
    body = [lines[0]]
    for line in lines[1:]:
        if rng.random() < 0.2:
            body += [_prose(rng) for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.1:
            body.append("")
        body.append(line)
    return body


def prose_key(seed: int, count: int = 12) -> ProseKey:
    """A seeded answer: prose, a key with prose lines inside its body, framed one of the ways
    models paste keys, its END line or not (cut short, then prose), prose."""
    rng = random.Random(seed)
    lines = [_line(rng, rng.random() < 0.15) for _ in range(count)]
    body = _body(rng, lines)
    if rng.random() < 0.15:  # single-line body: its lines before the first prose as one line
        first = next((i for i, x in enumerate(body) if " " in x or not x), len(body))
        body = ["".join(body[:first]), *body[first:]]
    if rng.random() < 0.2:
        body.append(rng.choice(["AAAA==", "Zm9v", "QUJD"]))
    end = rng.random() < 0.7
    block = ["-----BEGIN PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----" if end else ""]
    frame = rng.choice(["plain", "quoted", "crlf", "spaces", "blank"])
    if frame == "quoted":
        block = [f"> {x}" for x in block]
    joined = {"crlf": "\r\n", "spaces": " ", "blank": "\n\n"}.get(frame, "\n")
    after = "\n" if end else "\nThat is all. "
    return ProseKey(f"{PROSE}here:\n{joined.join(block)}{after}{PROSE}", tuple(lines))


def leaked(answer: str, lines: tuple[str, ...]) -> list[str]:
    """The key lines (any 16-character stretch of one) the answer shows."""
    return [x for x in lines if any(x[i : i + 16] in answer for i in range(0, len(x) - 15, 4))]


def _long_key() -> ProseKey:
    """400 key lines (~26,000 characters), a prose line after the fifth, its END line."""
    lines = tuple(_line(random.Random(n), False) for n in range(400))
    body = "\n".join([*lines[:5], "see the vault for more", *lines[5:]])
    block = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    return ProseKey(f"{PROSE}here:\n{block}\n{PROSE}", lines)


_CASES = {"seed_7": prose_key(7), "long": _long_key()}
# The fuzzer's seeds, in batches (deterministic: the same keys every run).
_BATCHES = 8
_SEEDS_PER_BATCH = 50


async def test_a_key_with_prose_inside_its_body_is_redacted_whole_in_a_unary_grpc_answer(
    fake: FakeUpstream, keys_router: Any
) -> None:
    case = _CASES["long"]
    answers = await grpc_answers(fake, keys_router, case.text)
    assert answers.unary.count("[REDACTED:private_key]") == 1
    assert not leaked(answers.unary, case.lines)
    assert answers.unary == f"{PROSE}here:\n[REDACTED:private_key]\n{PROSE}"
    assert answers.streamed == answers.unary


@pytest.mark.parametrize("name", _CASES)
def test_a_key_with_prose_inside_is_redacted_whole_streamed_as_unary(name: str) -> None:
    case = _CASES[name]
    unary = RULE.redact(case.text, Counter())
    assert unary is not None and not leaked(unary, case.lines)
    assert unary.startswith(f"{PROSE}here:") and unary.endswith(PROSE)
    for size in (1, 7, 64, 1000):
        assert _stream(case.text, size) == unary, size


@pytest.mark.parametrize("batch", range(_BATCHES))
def test_fuzzed_keys_show_no_key_line_in_either_path(batch: int) -> None:
    for seed in range(batch * _SEEDS_PER_BATCH, (batch + 1) * _SEEDS_PER_BATCH):
        case = prose_key(seed)
        unary = RULE.redact(case.text, Counter())
        assert unary is not None and not leaked(unary, case.lines), (seed, unary)
        size = (3, 16, 61, 500)[seed % 4]
        assert _stream(case.text, size) == unary, (seed, size)
