"""Targets judged on runs that had errors: a request that failed is no answer, so a target
whose numbers came with errors is not a PASS (`_report.targets`)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._report import summarise, targets
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


def _with_errors(system: str, scenario: str, level: int, **changes: Any) -> dict[str, Any]:
    """The harness's sample run with `system`'s runs of `scenario` at `level` changed."""
    data = _data(sb_p50=0.5)
    for run in data["runs"]:
        if (run["system"], run["scenario"], run["level"]) == (system, scenario, level):
            run.update(changes)
    data["summary"] = summarise(data["runs"])
    data["targets"] = targets(data["summary"], data)
    return data


def _target(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(t for t in data["targets"] if t["target"].startswith(prefix))


UNARY = "non-streaming added p50"


def test_switchboard_answering_errors_fast_does_not_pass() -> None:
    # wrk times error responses too: quick 401s give a small p50 of no answer at all
    data = _with_errors("switchboard", "unary", 1, errors=500, rps=0.0)
    target = _target(data, UNARY)
    assert target["status"] == "FAIL"
    assert "Switchboard had 1,000 errors" in target["detail"]  # both rounds


def test_switchboard_with_every_request_failed_fails_rather_than_not_measured() -> None:
    # the Python client keeps no latency of a failed request: the row has no p50
    data = _with_errors("switchboard", "stream", 16, errors=40, chunks_per_s=0.0, ttft_ms=None)
    assert _target(data, "chunks/s at c=16")["status"] == "FAIL"


def test_peer_with_errors_is_no_comparison() -> None:
    data = _with_errors("litellm", "stream", 16, errors=3)
    target = _target(data, "chunks/s at c=16")
    assert target["status"] == "N/A"
    assert "LiteLLM had 6 errors" in target["detail"]


def test_a_throughput_short_of_a_peer_with_errors_still_fails() -> None:
    # the peer's errors are no answers: they only lowered its count, a clean peer is further ahead
    data = _with_errors("litellm", "stream", 16, errors=3, chunks_per_s=2000.0)
    target = _target(data, "chunks/s at c=16")
    assert target["status"] == "FAIL"
    assert "(5.5×)" in target["detail"] and "LiteLLM had 6 errors" in target["detail"]


def test_grpc_target_with_errors_fails() -> None:
    runs = []
    for system, p50 in (("direct", 0.3), ("switchboard-grpc", 0.5)):
        run = {"scenario": "unary-py", "system": system, "level": 1, "round": 0}
        run |= {"client": "x", "rps": 3000.0, "latency_ms": {"p50": p50, "p99": p50}}
        run |= {"ttft_ms": None, "chunks_per_s": 0.0, "cpu_s_per_1k": 1.0, "errors": 0}
        runs.append(run)
    data = {"runs": runs, "idle_rss_kib": {}}
    assert _target({"targets": targets(summarise(runs), data)}, "gRPC path")["status"] == "PASS"
    runs[1]["errors"] = 12
    target = _target({"targets": targets(summarise(runs), data)}, "gRPC path")
    assert (target["status"], "12 errors" in target["detail"]) == ("FAIL", True)


def _idle_streams(**streams: Any) -> dict[str, Any]:
    data = _data(sb_p50=0.5)
    data["idle_streams"] = {"requested": 2000, "open_s": 120.0, **streams}
    return _target({"targets": targets(data["summary"], data)}, "2,000 idle open streams")


def test_idle_streams_of_which_none_opened_fail() -> None:
    failed = ["HTTP 503: b'too many streams'"]
    target = _idle_streams(opened=0, failed=2000, kib_per_stream=None, error_samples=failed)
    assert target["status"] == "FAIL"
    assert "0 of 2000 opened" in target["detail"] and "HTTP 503" in target["detail"]


def test_idle_streams_not_run_are_not_measured() -> None:
    data = _data(sb_p50=0.5)
    data["idle_streams"] = None
    found = _target({"targets": targets(data["summary"], data)}, "2,000 idle open streams")
    assert found["status"] == "N/A"


def _with_failed(system: str, scenario: str, level: int, rounds: tuple[int, ...]) -> dict[str, Any]:
    """The harness's sample run where `system`'s runs of `scenario` at `level` in `rounds`
    failed, as `run.run_matrix` records them: out of the runs, listed under `failures`."""
    data = _data(sb_p50=0.5)
    where = (system, scenario, level)
    failed = [r for r in data["runs"] if (r["system"], r["scenario"], r["level"]) == where]
    failed = [r for r in failed if r["round"] in rounds]
    data["runs"] = [r for r in data["runs"] if r not in failed]
    keys = ("scenario", "system", "level", "round")
    data["failures"] = [{**{k: r[k] for k in keys}, "error": "timed out"} for r in failed]
    data["summary"] = summarise(data["runs"])
    data["targets"] = targets(data["summary"], data)
    return data


def test_a_switchboard_run_that_failed_fails_its_target_though_other_rounds_passed() -> None:
    # a stream that hung until the load generator's timeout: the other round alone would pass
    target = _target(_with_failed("switchboard", "stream", 16, (1,)), "chunks/s at c=16")
    assert target["status"] == "FAIL"
    assert "Switchboard had 1 failed run" in target["detail"]


def test_switchboard_whose_every_run_failed_fails_rather_than_not_measured() -> None:
    target = _target(_with_failed("switchboard", "unary", 1, (0, 1)), UNARY)
    assert (target["status"], target["detail"]) == ("FAIL", "Switchboard had 2 failed runs")


def test_a_peer_run_that_failed_is_no_comparison() -> None:
    target = _target(_with_failed("litellm", "stream", 16, (0,)), "chunks/s at c=16")
    assert target["status"] == "N/A"
    assert "LiteLLM had 1 failed run: no comparison" in target["detail"]


def test_grpc_target_with_a_failed_run_fails() -> None:
    runs = []
    for rnd in (0, 1):
        for system, p50 in (("direct", 0.3), ("switchboard-grpc", 0.5)):
            run = {"scenario": "unary-py", "system": system, "level": 1, "round": rnd}
            run |= {"client": "x", "rps": 3000.0, "latency_ms": {"p50": p50, "p99": p50}}
            run |= {"ttft_ms": None, "chunks_per_s": 0.0, "cpu_s_per_1k": 1.0, "errors": 0}
            runs.append(run)
    failed = {"scenario": "unary-py", "system": "switchboard-grpc", "level": 1, "round": 1}
    data = {"runs": runs[:3], "idle_rss_kib": {}, "failures": [{**failed, "error": "x"}]}
    target = _target({"targets": targets(summarise(runs[:3]), data)}, "gRPC path")
    assert (target["status"], "1 failed run" in target["detail"]) == ("FAIL", True)
