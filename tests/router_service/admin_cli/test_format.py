"""`switchboard admin`'s text helpers (router_service/admin_cli/_format.py): tables line up,
durations, sizes and deadlines read as a person says them."""

from __future__ import annotations

import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.admin_cli._format import ago, count, duration, size, table, until
from router_service.admin_cli._render import info_table

pytestmark = pytest.mark.timeout(10)


def test_a_table_pads_each_column_to_its_widest_cell() -> None:
    shown = table([("alpha", "fp_1", "active"), ("b", "fp_0123456789ab", "")], ("P", "FP", "S"))
    assert shown.splitlines() == [
        "P      FP               S",
        "alpha  fp_1             active",
        "b      fp_0123456789ab",  # no trailing spaces
    ]
    assert table([], ("P", "FP")) == ""  # headers alone: nothing to show
    assert table([("key", "value")]) == "key  value"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (42, "42s"),
        (60, "1m"),
        (185, "3m 5s"),
        (3605, "1h"),  # the seconds of an hour are noise
        (7800, "2h 10m"),
        (3 * 86400, "3d"),
        (3 * 86400 + 4 * 3600 + 59, "3d 4h"),
        (-5, "0s"),
    ],
)
def test_a_duration_is_its_largest_unit_and_the_next(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_deadlines_read_from_now() -> None:
    now = 1_800_000_000.0
    assert until(0, now) == "-"  # none
    assert until(now + 42, now) == "in 42s"
    assert until(now - 3, now) == "ended 3s ago"
    # A key disabled by hand (ten years out) is so until someone enables it; any other
    # deadline that far ahead still comes (a certificate, a key issued for years).
    assert until(now + 10 * 365 * 86400, now, open_ended=True) == "until changed"
    assert until(now + 400 * 86400, now) == "in 400d"
    assert ago(now - 302, now) == "5m 2s ago"
    assert ago(0, now) == "-"
    # `now` is read as the command starts: what its own call made (`client-keys issue`'s key)
    # is a little later, and was made now, not "in 0s".
    assert ago(now + 0.3, now) == "0s ago"
    assert ago(now + 5, now) == "in 5s"  # another clock, ahead


@pytest.mark.parametrize(
    ("count_bytes", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1_258_291, "1.2 MiB"), (5 << 30, "5.0 GiB")],
)
def test_sizes_in_binary_units(count_bytes: int, shown: str) -> None:
    assert size(count_bytes) == shown


def test_counts_group_thousands_and_keep_a_fraction() -> None:
    assert (count(12345), count(2.5), count(3.0)) == ("12,345", "2.5", "3")


def test_a_cell_cannot_drive_the_terminal() -> None:
    # A background response's model is the caller's text, listed before anything checks it.
    model = "\x1b]0;pwned\x07\x1b[2Jgpt\nFAKE  ROW\u202e"
    shown = table([("resp_1", model)], ("RESPONSE", "MODEL"))
    assert shown.splitlines() == [
        "RESPONSE  MODEL",
        "resp_1    \\x1b]0;pwned\\x07\\x1b[2Jgpt\\nFAKE  ROW\\u202e",
    ]


def test_a_certificate_good_for_years_says_when_it_expires() -> None:
    now = 1_800_000_000.0
    info = admin_pb.GetServerInfoResponse(certificate_expires_unix=now + 400 * 86400 + 7200)
    rows = dict(line.split(None, 1) for line in info_table(info, now).splitlines()[-2:])
    assert rows["certificate"].strip() == "expires in 400d 2h"
