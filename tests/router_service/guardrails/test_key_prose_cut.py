"""A key cut short (no END line) and prose after it holding a token shaped like a body line (a
path, a commit hash, a config key): the find went on past the prose to that token, and on from
token to token (each gave 256 more characters), swallowing paragraphs; inside a JSON string it
ran past the string's closing quote into the next field. After prose only a whole body line
(alone on its line, or one of a run of them) or the END line goes on a key: the prose after a
key cut short is shown, unary and streamed alike, and JSON stays JSON."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.router_service.guardrails.held_keys import grpc_answers
from tests.router_service.guardrails.test_key_prose import leaked, prose_key
from tests.router_service.guardrails.test_long_held import PROSE, RULE, _stream

pytestmark = pytest.mark.timeout(300)

_LINES = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    "MZl0xZm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dX",
)
_KEY = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(_LINES) + "\n"
_HASH = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
# Prose after the key, each sentence holding a token shaped like a body line.
_AFTERS = {
    "path": "The binary lives at /usr/local/bin/deploy2 on the host. Ask ops about it.",
    "hash": f"Commit {_HASH} fixed it. Thanks all.",
    "config": "Stored under config/keys/Prod2024Main now. Ask ops.",
    # Each token within 256 characters of the one before it: they chained, paragraph on paragraph.
    "chained": (
        f"Commit {_HASH} fixed it.\n\nThen /usr/local/bin/deploy2 ran again, twice.\n\n"
        "Later config/keys/Prod2024Main moved. That is all."
    ),
}


@pytest.mark.parametrize("name", _AFTERS)
async def test_prose_after_a_key_cut_short_is_shown_in_grpc_answers(
    name: str, fake: FakeUpstream, keys_router: Any
) -> None:
    after = _AFTERS[name]
    answers = await grpc_answers(fake, keys_router, f"{PROSE}here:\n{_KEY}{after}")
    assert answers.unary == f"{PROSE}here:\n[REDACTED:private_key]\n{after}"
    assert answers.streamed == answers.unary


async def test_a_key_cut_short_in_a_json_string_ends_at_its_closing_quote(
    fake: FakeUpstream, keys_router: Any
) -> None:
    note = f"It broke. Commit {_HASH} fixed it."
    text = json.dumps({"key": _KEY, "note": note, "n": 1})
    answers = await grpc_answers(fake, keys_router, text)
    assert json.loads(answers.unary) == {"key": "[REDACTED:private_key]", "note": note, "n": 1}
    assert answers.streamed == answers.unary


@pytest.mark.parametrize("name", _AFTERS)
def test_prose_after_a_key_cut_short_is_shown_streamed_as_unary(name: str) -> None:
    text = f"{PROSE}here:\n{_KEY}{_AFTERS[name]}"
    unary = RULE.redact(text, Counter())
    assert unary == f"{PROSE}here:\n[REDACTED:private_key]\n{_AFTERS[name]}"
    for size in (1, 7, 64, 1000):
        assert _stream(text, size) == unary, size


def _tokens(rng: random.Random) -> str:
    """Prose sentences after a key, tokens shaped like body lines inside them."""
    hexes = "".join(rng.choice("0123456789abcdef") for _ in range(40))
    tokens = [hexes, f"/usr/local/bin/deploy{rng.randint(2, 99)}", "config/keys/Prod2024Main"]
    sentences = [f"Commit {rng.choice(tokens)} fixed it." for _ in range(rng.randint(1, 4))]
    return rng.choice([" ", "\n", "\n\n"]).join(sentences)


@pytest.mark.parametrize("batch", range(4))
def test_fuzzed_keys_cut_short_show_the_prose_after_them(batch: int) -> None:
    for seed in range(batch * 50, (batch + 1) * 50):
        case = prose_key(seed)
        # Its END line dropped: the key is cut short, prose with body-shaped tokens after it.
        text = case.text.replace("-----END PRIVATE KEY-----", "")
        after = _tokens(random.Random(seed))
        text = f"{text}\n{after}"
        unary = RULE.redact(text, Counter())
        assert unary is not None and not leaked(unary, case.lines), (seed, unary)
        assert unary.endswith(after), (seed, unary)
        size = (3, 16, 61, 500)[seed % 4]
        assert _stream(text, size) == unary, (seed, size)
