"""A long run of digit groups of one size is read for the whole block at once (`uniform_hits`):
it finds the cards that reading it group by group finds, over random digits (a tenth of the
candidates pass Luhn), every group size, both separators, runs cut by the 4 KiB blocks."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from router_service.config import GuardrailConfig
from router_service.guardrails import Rule, _card_runs, _detectors

CARDS = Rule(
    GuardrailConfig.model_validate({"name": "c", "detect": ["credit_card"], "action": "redact"})
)


def _uniform_run(rng: random.Random, size: int) -> str:
    separator = rng.choice(" -")
    groups = rng.randint(64 // (size + 1) + 2, 9000 // (size + 1))
    digits = "".join(rng.choice("0123456789" if rng.random() < 0.5 else "4") for _ in range(4))
    return separator.join(
        "".join(rng.choice(digits + "0123456789") for _ in range(size)) for _ in range(groups)
    )


# (Groups of 10 to 12 digits or over 19 hold no candidate: no run of them is read at all.)
@pytest.mark.parametrize("size", [*range(1, 10), *range(13, 20)])
def test_a_run_of_one_group_size_finds_what_reading_it_group_by_group_finds(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(size)
    texts = [
        f"n {_uniform_run(rng, size)}{rng.choice(['', ' 4', '-44', ' x'])} end" for _ in range(6)
    ]
    fast = [CARDS.replacements(text, Counter()) for text in texts]
    used = []
    real = _card_runs.uniform_hits

    def spy(*args: object) -> tuple[list[int], int, int]:
        used.append(real(*args))  # type: ignore[arg-type]
        return [], 0, 0

    monkeypatch.setattr(_detectors, "uniform_hits", spy)
    assert [CARDS.replacements(text, Counter()) for text in texts] == fast
    assert any(tail for _, tail, _ in used)  # the fast path was there to be taken
    assert any(hits for hits, _, _ in used)  # and found candidates to check
