"""The reset headers' durations as OpenAI writes them (Go's format), read back by the parser the
router uses for OpenAI's own `x-ratelimit-reset-*`: never shorter than the wait they stand for,
and at most a millisecond longer."""

from __future__ import annotations

import math

import pytest

from http_edge._headers import duration_text
from router_service.providers._classify import _parse_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (-1.0, "0s"),
        (math.inf, "0s"),
        (0.0004, "1ms"),
        (0.02, "20ms"),
        (0.999, "999ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (8.64, "8.64s"),
        (50.0, "50s"),
        (60.0, "1m0s"),
        (60.1967213, "1m0.197s"),
        (120.0, "2m0s"),
        (360.0, "6m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize("seconds", [0.001, 0.0123, 0.5, 1.0001, 59.9999, 61.25, 119.99, 7200.4])
def test_a_written_duration_parses_back_to_at_least_the_wait(seconds: float) -> None:
    parsed = _parse_duration(duration_text(seconds))
    assert parsed is not None
    assert seconds <= parsed + 1e-9 < seconds + 0.001 + 1e-9
