"""The harness's pure parts: peer requirements, statistics, targets, profile summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks._load import percentiles
from benchmarks._peer import requirements_from_metadata
from benchmarks._render import markdown
from benchmarks._report import ratios, summarise, targets
from benchmarks.profile import summarise_raw

pytestmark = pytest.mark.timeout(10)

METADATA = """\
Metadata-Version: 2.1
Name: litellm
Version: 1.106.10
Requires-Dist: certifi>=2026.10.19
Requires-Dist: httpx>=0.23.0
Requires-Dist: uvicorn<0.30,>=0.29.0 ; extra == "proxy"
Requires-Dist: boto3==1.34.34 ; extra == "extra-proxy"
Requires-Dist: tomli ; python_version < "3.11"
Requires-Dist: orjson<4.0.0,>=3.9.7 ; extra == "proxy"
"""


def test_peer_requirements_core_and_proxy_with_certifi_unpinned() -> None:
    reqs = requirements_from_metadata(METADATA)
    assert "certifi" in reqs
    assert "httpx>=0.23.0" in reqs
    assert any(r.startswith("uvicorn") for r in reqs)
    assert any(r.startswith("orjson") for r in reqs)
    assert not any(r.startswith("boto3") for r in reqs)
    assert all(";" not in r for r in reqs)


def test_percentiles_nearest_rank() -> None:
    result = percentiles([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert result is not None
    assert result["p50"] == pytest.approx(50)
    assert result["p99"] == pytest.approx(99)
    assert result["max"] == pytest.approx(100)
    assert percentiles([]) is None


def _run(
    scenario: str,
    system: str,
    level: int,
    rnd: int,
    p50: float,
    rps: float,
    ttft: float | None = None,
    chunks: float = 0.0,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "system": system,
        "level": level,
        "round": rnd,
        "client": "x",
        "rps": rps,
        "latency_ms": {"p50": p50, "p99": p50 * 2},
        "ttft_ms": None if ttft is None else {"p50": ttft, "p99": ttft * 2},
        "chunks_per_s": chunks,
        "cpu_s_per_1k": 1.0,
        "errors": 0,
        "completed_total": 10,
    }


def _data(sb_p50: float) -> dict[str, Any]:
    runs = []
    for rnd, drift in enumerate((0.0, 1.0)):  # machine drift shifts every system of a round
        runs += [
            _run("unary", "direct", 1, rnd, 0.1 + drift, 10000),
            _run("unary", "switchboard", 1, rnd, 0.1 + sb_p50 + drift, 1000),
            _run("unary", "litellm", 1, rnd, 0.1 + 8.0 + drift, 100),
            _run("stream", "direct", 16, rnd, 1, 900, ttft=0.5, chunks=20000),
            _run("stream", "switchboard", 16, rnd, 2, 400, ttft=1.0, chunks=11000),
            _run("stream", "litellm", 16, rnd, 9, 40, ttft=9.0, chunks=1000),
        ]
    data: dict[str, Any] = {
        "meta": {
            "date": "d",
            "commit": "c",
            "cpus": 2,
            "python": "3.11",
            "peer": "litellm",
            "peer_workers": 1,
            "levels": [1, 16],
            "duration_s": 1,
            "warmup_s": 0,
            "rounds": 2,
            "unary_client": "wrk",
            "quick": True,
        },
        "runs": runs,
        "idle_rss_kib": {"switchboard": 100_000, "litellm": 400_000},
        "peak_rss_kib": {"switchboard": 120_000, "litellm": 410_000},
        "failover": {
            "rounds": [
                {"bench": {"p50_ms": 3.0}, "bench-fallback": {"p50_ms": 4.0}, "extra_p50_ms": 1.0}
            ]
        },
        "idle_streams": {
            "requested": 2000,
            "opened": 2000,
            "open_s": 1.0,
            "rss_before_kib": 1,
            "rss_open_kib": 2,
            "kib_per_stream": 10.0,
        },
    }
    data["summary"] = summarise(runs)
    data["ratios"] = ratios(data["summary"])
    data["targets"] = targets(data["summary"], data)
    return data


def _status(data: dict[str, Any], prefix: str) -> str:
    return str(next(t["status"] for t in data["targets"] if t["target"].startswith(prefix)))


def test_added_latency_subtracts_the_same_rounds_direct_run() -> None:
    data = _data(sb_p50=0.5)
    row = next(r for r in data["summary"] if r["system"] == "switchboard" and r["level"] == 1)
    assert row["added_p50_ms"] == pytest.approx(0.5)


@pytest.mark.parametrize(("sb_p50", "status"), [(0.5, "PASS"), (2.0, "FAIL")])
def test_targets_pass_fail_and_not_measured(sb_p50: float, status: str) -> None:
    data = _data(sb_p50)
    assert _status(data, "non-streaming added p50") == status
    assert _status(data, "requests/s at c=64") == "N/A"  # level 64 was not run
    assert _status(data, "chunks/s at c=16") == "PASS"  # 11,000 vs 1,000
    assert _status(data, "router + edge idle RSS") == "PASS"
    assert _status(data, "2,000 idle open streams") == "PASS"
    assert _status(data, "a deployment that refuses") == "PASS"
    assert "## Targets" in markdown(data)


def test_profile_summary_attributes_native_time_to_python_callers(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "thread (1): MainThread;main (router_service/cli.py);f (a/b.py);sendmsg (libc.so.6) 6\n"
        "thread (1): MainThread;main (router_service/cli.py);g (a/c.py) 2\n"
        "thread (1): MainThread;main (router_service/cli.py);epoll_wait (libc.so.6) 2\n"
        "thread (2): Thread-1 (_poll_wrapper);epoll_wait (libc.so.6) 10\n"
    )
    summary = summarise_raw(raw)
    assert summary["busy"] == 8
    assert summary["self"][0] == ("f (a/b.py)", 0.75)
    assert ("sendmsg (libc.so.6)", 0.75) in summary["native"]
    assert all(not name.startswith("main ") for name, _ in summary["inclusive"])
    assert summary["main_idle_share"] == pytest.approx(0.1)


def test_long_prompt_streams_say_how_many_copies_of_the_prompt_a_stream_holds() -> None:
    from benchmarks._measure import long_prompt
    from benchmarks._render import _long_prompt_streams

    assert sum(len(m["content"]) for m in long_prompt(32)) == 32 * 1024 + len("Answer briefly.")
    probe = {
        "prompt_kib": 32,
        "short": {"opened": 500, "kib_per_stream": 100.0},
        "long": {"opened": 500, "kib_per_stream": 164.0},
        "rss_per_prompt_kib": 2.0,
    }
    text = _long_prompt_streams({"idle_streams_long_prompt": probe})
    assert "100.0 KiB each" in text and "164.0 KiB" in text and "adds 2.0 KiB" in text
    assert _long_prompt_streams({"idle_streams_long_prompt": None}) == ""


def test_memtrace_attributes_a_file_to_our_packages_only() -> None:
    from benchmarks._memtrace import _ours

    assert _ours("/work/x/router_service/providers/_sse.py") == "router_service/providers/_sse.py"
    assert _ours("/work/x/http_edge/_sse.py") == "http_edge/_sse.py"
    assert _ours("/v/lib/python3.11/site-packages/clients/x.py") is None  # not ours
    assert _ours("/usr/lib/python3.11/asyncio/tasks.py") is None
