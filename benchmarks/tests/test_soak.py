"""The soak's pure parts: the slope and verdict of a sampled figure, the Prometheus label count,
and the config it runs with (`benchmarks/soak.py` itself is a tool, not a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._soak_config import soak_config
from benchmarks._soak_sample import label_values, verdict
from benchmarks._trend import Tolerance, second_half, slope, trend
from router_service.config import load_config

pytestmark = pytest.mark.timeout(10)


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([(0, 1), (10, 3), (20, 5)]) == pytest.approx(0.2)
    assert slope([(0, 5), (10, 3), (20, 1)]) == pytest.approx(-0.2)
    assert slope([(0, 1), (10, 4), (20, 1)]) == pytest.approx(0.0)
    assert slope([(5, 1)]) == 0.0
    assert slope([(5, 1), (5, 2)]) == 0.0  # no spread in time: no slope


def test_the_second_half_is_judged_and_warm_up_is_not() -> None:
    # Fast growth while warming up (first half), then flat with noise: flat.
    points = [(float(t), 50.0 + t) for t in range(0, 60, 10)]
    points += [(float(t), 110.0 + (t // 10) % 2 * 0.5) for t in range(60, 130, 10)]
    assert [t for t, _ in second_half(points)] == [60, 70, 80, 90, 100, 110, 120]
    found = trend(points, Tolerance(absolute=2.0))
    assert (found.start, found.end) == (50.0, 110.0)
    assert found.flat is True


def test_steady_growth_within_or_beyond_the_tolerance() -> None:
    # 1 per minute over a 120 s second half: a rise of 2.
    points = [(float(t), 100.0 + t / 60) for t in range(0, 241, 10)]
    found = trend(points, Tolerance(absolute=1.0))
    assert found.slope_per_min == pytest.approx(1.0)
    assert found.rise == pytest.approx(2.0)
    assert found.flat is False
    assert trend(points, Tolerance(absolute=2.5)).flat is True
    # relative: 3 % of ~103 is ~3.1, above the rise
    assert trend(points, Tolerance(absolute=1.0, relative=0.03)).flat is True


def test_a_fall_is_flat_and_too_few_samples_say_so() -> None:
    falling = [(float(t), 100.0 - t) for t in range(0, 100, 10)]
    assert trend(falling, Tolerance(absolute=0.0)).flat is True
    assert trend([(0.0, 1.0), (10.0, 9.0)], Tolerance(absolute=0.0)).flat is None


def test_verdict_judges_per_figure_and_skips_what_it_is_told() -> None:
    rows = []
    for t in range(0, 200, 10):
        router = {"rss_mib": 80.0 + t / 10, "fds": 30.0, "series": 100.0 + t, "labels": 40.0}
        rows.append((float(t), {"router": router, "upstream": {"rss_mib": 50.0 + t}}))
    found = verdict(rows, not_judged=["upstream"])
    assert found[("router", "rss_mib")].word == "GROWS"
    assert found[("router", "fds")].word == "flat"
    assert found[("router", "labels")].word == "flat"
    assert found[("router", "series")].word == "not judged"
    assert found[("upstream", "rss_mib")].word == "not judged"


def test_failed_reads_are_left_out_of_the_trend() -> None:
    rows = [(float(t), {"router": {"labels": -1.0 if t % 20 else 40.0}}) for t in range(0, 100, 10)]
    judged = verdict(rows)[("router", "labels")]
    assert judged.trend.points == 3  # 40, 60, 80 of 0-80: the -1 reads are dropped
    assert judged.word == "flat"


def test_label_values_count_distinct_pairs_without_bucket_bounds() -> None:
    series = [
        'requests_total{client="a",outcome="OK"}',
        'requests_total{client="a",outcome="ERROR"}',
        'latency_bucket{client="a",le="0.5"}',
        'latency_bucket{client="b",le="+Inf"}',
        'odd{message="say \\"hi\\", twice"}',
        "up",
    ]
    assert label_values(series) == {
        ("client", "a"),
        ("client", "b"),
        ("outcome", "OK"),
        ("outcome", "ERROR"),
        ("message", 'say \\"hi\\", twice'),
    }


def test_the_soak_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "soak.yaml"
    path.write_text(soak_config("http://127.0.0.1:9/v1", 50051))
    config = load_config(str(path))
    assert set(config.providers) == {"alpha", "beta", "gamma"}
    assert {c.name for c in config.auth.clients if c.rpm == 60} == {"soak-limited"}
    # Part of the models cached, every deployment priced, money budgets: one never reached,
    # one spent early.
    assert config.cache.enabled and set(config.cache.models) < set(config.models)
    deployments = [d for group in config.models.values() for d in group.deployments]
    assert all(config.price_of(d) is not None for d in deployments)
    budgets = {c.name: c.usd_per_day for c in config.auth.clients if c.usd_per_day}
    assert budgets == {"soak-open": 1000, "soak-thrifty": 0.02}
    assert config.cache.ttl_s <= 30 and config.conversations.ttl_s <= 30  # steady within a run
