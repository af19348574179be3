"""The library RSS floor probe (`benchmarks/rss_floor.py`)."""

from __future__ import annotations

import sys

import pytest

from benchmarks.rss_floor import STEPS, floor

pytestmark = pytest.mark.timeout(60)


def test_the_probe_reports_each_import_then_grpcs_runtime() -> None:
    steps = floor(sys.executable, ["json", "grpc.aio"])
    assert [name for name, _ in steps] == ["python+asyncio", "json", "grpc.aio", "grpc runtime"]
    sizes = [mib for _, mib in steps]
    assert sizes[0] > 5  # an interpreter with asyncio is megabytes, whatever the machine
    assert sizes[2] > sizes[1]  # grpc's extension module is not free


def test_each_process_is_probed_with_what_it_runs_on() -> None:
    assert "httpx" in STEPS["router"] and "fastapi" not in STEPS["router"]
    assert "fastapi" in STEPS["edge"] and "httpx" not in STEPS["edge"]
