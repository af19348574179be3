"""The load matrix when a system fails (`run.run_matrix`), run as the bench runs it: the fast
fake upstream as `direct` and a peer whose process has exited. The failure is recorded, the
dead system is left out of the runs after it, no zero is read from a process that is gone,
and the other systems are measured all the same; the report says what failed."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from benchmarks._measure import LoadPlan
from benchmarks._procs import ProcessGroup, free_port
from benchmarks._render import markdown
from benchmarks._report import summarise, targets
from benchmarks._systems import System, start_upstream
from benchmarks.run import parse_args, run_matrix
from benchmarks.tests.test_harness import _data

pytestmark = pytest.mark.timeout(120)
KEY = ("system", "scenario", "level", "round")


def test_a_dead_peer_is_recorded_and_left_out_while_the_others_are_measured(
    tmp_path: Path,
) -> None:
    args = parse_args(["--levels", "1", "--rounds", "2", "--duration", "0.3", "--warmup", "0"])
    plan = LoadPlan(duration_s=0.3, warmup_s=0.0, wrk=None, tmp=tmp_path)
    with ProcessGroup(tmp_path) as group:
        direct, _ = start_upstream(group)
        gone = group.start("litellm", [sys.executable, "-c", "pass"], cwd=tmp_path)
        gone.popen.wait(30)
        url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
        peer = System("litellm", chat_url=url, procs=[gone])
        matrix = run_matrix({"direct": direct, "litellm": peer}, args, plan)
    measured = {(r["system"], r["scenario"], r["round"]) for r in matrix.runs}
    assert measured == {("direct", s, r) for s in ("unary", "stream", "unary-py") for r in (0, 1)}
    failed = [(f["system"], f["scenario"], f["round"], f.get("left_out")) for f in matrix.failures]
    assert failed == [
        ("litellm", "unary", 0, None),  # tried once: not running
        ("litellm", "stream", 0, True),  # then every run it lacks is recorded, not tried
        ("litellm", "unary", 1, True),
        ("litellm", "stream", 1, True),
    ]
    assert "not running" in matrix.failures[0]["error"]
    assert "litellm" not in matrix.peaks  # not the 0 KiB of a process that is gone

    data = _data(sb_p50=0.5)
    data["failures"] = matrix.failures
    text = markdown(data)
    assert "litellm failed (unary, c=1, round 0)" in text
    assert "litellm was left out of 3 later runs" in text
    # the rows it lacks are failed runs (a dead Switchboard FAILs its later targets: not N/A)
    found = targets(data["summary"], data)
    unary = next(t for t in found if t["target"].startswith("non-streaming added p50"))
    assert "LiteLLM had 2 failed runs" in unary["detail"]


def test_peak_rss_is_read_for_every_system_the_memory_table_shows(tmp_path: Path) -> None:
    """`switchboard serve` (`switchboard-1p`) has its idle RSS in the table: its peak too."""
    from benchmarks.run import MEMORY_SYSTEMS, peak_rss

    assert MEMORY_SYSTEMS == ("switchboard", "switchboard-1p", "litellm")
    with ProcessGroup(tmp_path) as group:
        argv = [sys.executable, "-c", "import signal; signal.pause()"]  # until stopped
        live = group.start("serve", argv, cwd=tmp_path)
        gone = group.start("litellm", [sys.executable, "-c", "pass"], cwd=tmp_path)
        gone.popen.wait(30)
        systems = {
            "switchboard-1p": System("switchboard-1p", procs=[live]),
            "litellm": System("litellm", procs=[gone]),
        }
        peaks = peak_rss(systems)
    assert list(peaks) == ["switchboard-1p"]  # none read as 0 KiB from a process that is gone
    assert peaks["switchboard-1p"] > 1000  # an interpreter's KiB


def test_a_failover_probe_that_hangs_is_a_failed_target_not_a_lost_bench(tmp_path: Path) -> None:
    """An edge that takes connections and never answers: the probe's load generator times out.
    That ended the bench after the whole matrix (no report); now the round is recorded as
    failed, no more rounds are tried, and the failover target FAILs with what happened."""
    from benchmarks._measure import failover

    plan = LoadPlan(duration_s=0.3, warmup_s=0.0, wrk=None, tmp=tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as hung:  # the kernel accepts; no one answers
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/v1/chat/completions"
        probe = failover(System("switchboard", chat_url=url), 5, 3, plan, timeout_s=3)
    assert [r["round"] for r in probe["rounds"]] == [0]
    assert "TimeoutExpired" in probe["rounds"][0]["failed"]

    data = _data(sb_p50=0.5)
    data["failover"] = probe
    target = next(t for t in targets(data["summary"], data) if "refuses" in t["target"])
    assert target["status"] == "FAIL"
    assert "round 0 failed" in target["detail"]
    assert "fallback –" in markdown(data)  # the report still renders the round


def test_a_system_that_never_answers_is_a_failed_run_not_an_empty_one(tmp_path: Path) -> None:
    """An edge that takes connections and never answers: the load generator's window ends with
    no request answered and none failed (those still in flight are cancelled, not errors). That
    was recorded as a run like any other (no latency, 0 chunks/s: the targets behind it N/A or,
    with wrk's p50 of 0 ms for no request, a PASS); now it is a failed run, which FAILs them."""
    args = parse_args(["--levels", "1", "--rounds", "1", "--duration", "0.3", "--warmup", "0"])
    # Waiting 1 s (not 10) past the window for a first answer that never comes.
    plan = LoadPlan(duration_s=0.3, warmup_s=0.0, wrk=None, tmp=tmp_path, late_s=1.0)
    with socket.create_server(("127.0.0.1", 0)) as hung:  # the kernel accepts; no one answers
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/v1/chat/completions"
        matrix = run_matrix({"switchboard": System("switchboard", chat_url=url)}, args, plan)
    assert matrix.runs == []
    assert [f["scenario"] for f in matrix.failures] == ["unary", "stream"]
    assert all("answered no request" in f["error"] for f in matrix.failures)

    data = _data(sb_p50=0.5)
    hung_run = ("switchboard", "unary", 1, 0)  # as run_matrix leaves it: out of the runs
    data["runs"] = [r for r in data["runs"] if tuple(r[k] for k in KEY) != hung_run]
    data["failures"] = matrix.failures  # round 1 alone would pass
    found = targets(summarise(data["runs"]), data)
    unary = next(t for t in found if t["target"].startswith("non-streaming added p50"))
    assert unary["status"] == "FAIL"
    assert "Switchboard had 1 failed run" in unary["detail"]


def test_a_long_prompt_stack_that_does_not_start_leaves_a_report(tmp_path: Path) -> None:
    """The last probe's own stack fails to start: that raised out of run_probes after the whole
    matrix and every other probe, and the bench left no report (no target at all). Now the
    probe says it failed, and the report renders it."""
    from benchmarks.run import Bench, long_prompt_probe
    from benchmarks.tests.test_variants import _CRASHING_ROUTER

    tree = tmp_path / "tree" / "router_service"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("")
    (tree / "__main__.py").write_text(_CRASHING_ROUTER)
    plan = LoadPlan(duration_s=0.3, warmup_s=0.0, wrk=None, tmp=tmp_path)
    with ProcessGroup(tmp_path / "logs") as group:
        bench = Bench(parse_args([]), group, tmp_path, tree.parent, "http://127.0.0.1:1/v1", plan)
        probe = long_prompt_probe(bench, 32)
        assert all(not proc.alive() for proc in group.procs)
    assert probe["rss_per_prompt_kib"] is None and "crashed at start" in probe["failed"]
    data = _data(sb_p50=0.5)
    data["idle_streams_long_prompt"] = probe
    assert "the long-prompt probe failed: RuntimeError: router-long-prompt exited" in markdown(data)
