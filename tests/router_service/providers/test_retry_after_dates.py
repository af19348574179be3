"""A `Retry-After` HTTP date is GMT whatever the router host's time zone (RFC 9110 §5.6.7): its
three forms are read, and one with no zone of its own (asctime's; a `-0000`) is not taken for
the host's local time, which on a host five hours west of GMT made a 10 s wait five hours (a
key cooled that long by a 429, a deployment the whole cap by a 503)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from router_service.clock import ManualClock
from router_service.outcomes import Outcome
from router_service.providers import classify_http_error, retry_after_seconds

CLOCK = ManualClock(start=1_700_000_000.0)  # 2023-11-14 22:13:20 GMT


@pytest.fixture(params=["UTC0", "EST5", "JST-9"])
def host_time_zone(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The process's local time zone (POSIX TZ strings: no tz database needed)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "date",
    [
        "Tue, 14 Nov 2023 22:13:30 GMT",  # IMF-fixdate
        "Tuesday, 14-Nov-23 22:13:30 GMT",  # RFC 850
        "Tue Nov 14 22:13:30 2023",  # asctime: GMT, though it says no zone
        "Tue, 14 Nov 2023 22:13:30 -0000",
        "Tue, 14 Nov 2023 22:13:30",
    ],
)
@pytest.mark.usefixtures("host_time_zone")
def test_an_http_date_is_gmt_whatever_the_hosts_zone(date: str) -> None:
    assert retry_after_seconds({"Retry-After": date}, CLOCK) == pytest.approx(10.0)
    failed = classify_http_error(503, {"message": "down"}, {"Retry-After": date}, CLOCK)
    assert failed.outcome is Outcome.UPSTREAM_ERROR
    assert failed.retry_after_s == pytest.approx(10.0)


@pytest.mark.parametrize("text", ["soon", "Nov 14 2023", "Tue Nov 14 2023", "12 34"])
def test_words_that_are_no_date_are_no_wait(text: str) -> None:
    assert retry_after_seconds({"Retry-After": text}, CLOCK) is None
