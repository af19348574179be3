"""Targets judged on runs that had errors: a request that failed is no answer, so a target
whose numbers came with errors is not a PASS (`_report.targets`)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._report import targets
from benchmarks.tests.test_harness import _data

pytestmark = pytest.mark.timeout(10)

FAILOVER = "a deployment that refuses connections"


def _failover(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    data = _data(sb_p50=0.5)
    data["failover"] = {"requests_per_model": 300, "rounds": rounds}
    return next(t for t in targets(data["summary"], data) if t["target"].startswith(FAILOVER))


def _round(plain: float | None, fallback: float | None, errors: int) -> dict[str, Any]:
    extra = None if plain is None or fallback is None else fallback - plain
    return {
        "errors": errors,
        "error_samples": ["HTTP 502: b'...'"] * min(errors, 5),
        "bench": {"p50_ms": plain},
        "bench-fallback": {"p50_ms": fallback},
        "extra_p50_ms": extra,
    }


def test_failover_whose_fallback_never_answered_fails() -> None:
    target = _failover([_round(3.0, None, 300), _round(3.1, None, 300)])
    assert target["status"] == "FAIL"
    assert "600 errors" in target["detail"]


def test_failover_with_some_errors_fails_even_when_fast() -> None:
    target = _failover([_round(3.0, 3.5, 0), _round(3.0, 3.4, 7)])
    assert target["status"] == "FAIL"
    assert "7 errors" in target["detail"]


def test_failover_without_errors_is_judged_on_the_extra() -> None:
    assert _failover([_round(3.0, 3.5, 0), _round(3.0, 3.4, 0)])["status"] == "PASS"
    assert _failover([_round(3.0, 6.0, 0)])["status"] == "FAIL"
    assert _failover([])["status"] == "N/A"
