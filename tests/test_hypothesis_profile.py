"""The suite's hypothesis settings (tests/conftest.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_property_tests_have_no_wall_clock_limits() -> None:
    """An example slow on a loaded machine is no failure: no deadline, no too-slow check."""
    loaded = settings()  # what a test's `@settings` starts from
    assert loaded.deadline is None
    assert HealthCheck.too_slow in loaded.suppress_health_check
