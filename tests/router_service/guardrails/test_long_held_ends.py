"""A long private key streamed whose text, where a scan looks, ends after lines whose last 16
characters are letters (as 1 in 28 of a real key's lines do): its find as it stands ends lines
before the text's end. Its block is still open (`_PENDING`: a few body lines however framed,
a numbered line's number taken as base64), so the stream holds it, and past MAX_HELD_CHARS it is
replaced through the release's cut (not to its find's end: what came after went out as prose).
A key pasted with spaces for its line breaks ends after a few runs, not at its BEGIN line. Before,
hundreds of its lines streamed out unredacted; the unary answer redacted them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.router_service.guardrails.held_keys import grpc_answers
from tests.router_service.guardrails.test_long_held import _LINES, PROSE, RULE, _stream

pytestmark = pytest.mark.timeout(120)

_LETTERS = "abcdefghijKLMNOPqrstuvwx"
# Three lines in six end in 24 letters (no digit, `+` nor `/`).
LETTERED = [x if n % 6 > 2 else x[:40] + _LETTERS for n, x in enumerate(_LINES)]


def _key(lines: int, layout: str) -> str:
    key = (
        f"-----BEGIN PRIVATE KEY-----\n{chr(10).join(LETTERED[:lines])}\n-----END PRIVATE KEY-----"
    )
    rows = key.split("\n")
    if layout == "quoted":
        return "\n".join("> " + row for row in rows)
    if layout == "numbered":
        return "\n".join(f"{n}: {row}" for n, row in enumerate(rows, 1))
    if layout == "spaces":
        return " ".join(rows[:-2])  # (cut short, as pasted where line breaks became spaces)
    return key


CASES = [(400, layout) for layout in ("plain", "quoted", "numbered")]
CASES += [(1100, layout) for layout in ("plain", "quoted", "numbered")] + [(2100, "spaces")]
CASES += [(400, "spaces")]  # (its last line ends in letters: unary left its body whole)


@pytest.mark.parametrize(("lines", "layout"), CASES, ids=[f"{n}-{x}" for n, x in CASES])
def test_a_long_key_with_lines_ending_in_letters_streams_as_unary(lines: int, layout: str) -> None:
    text = f"{PROSE}here:\n{_key(lines, layout)}\nThat is all. {PROSE}"
    unary = RULE.redact(text, Counter())
    assert unary is not None and unary.count("[REDACTED:private_key]") == 1
    assert not [x for x in _LINES[:lines] if x[:10] in unary]
    for size in (7, 20, 64, 65, 66, 67, 1000):
        assert _stream(text, size) == unary, size


@pytest.mark.parametrize("run", ["-", "x-"])
def test_a_begin_line_before_a_long_run_an_address_may_hold_streams_as_unary(run: str) -> None:
    # Past MAX_HELD_CHARS the run is an address's name part still open, not the key's block:
    # released as it is, the BEGIN line only replaced (as unary), not the run with it.
    text = f"{PROSE}-----BEGIN PRIVATE KEY-----{run * (70_000 // len(run))} {PROSE}"
    unary = RULE.redact(text, Counter())
    assert unary is not None and run * 30_000 in unary
    for size in (7, 20, 1000):
        assert _stream(text, size) == unary, size


@pytest.mark.parametrize("layout", ["plain", "quoted"])
async def test_a_long_key_with_lines_ending_in_letters_is_redacted_in_a_grpc_stream(
    fake: FakeUpstream, keys_router: Any, layout: str
) -> None:
    text = f"{PROSE}here:\n{_key(1100, layout)}\n{PROSE}"
    answers = await grpc_answers(fake, keys_router, text)
    answer = answers.unary
    assert answer.count("[REDACTED:private_key]") == 1
    assert not [x for x in _LINES if x[:10] in answer]
    assert answers.streamed == answer
