"""The variants probe's pure parts: cost and targets from sample runs (missing data → N/A), the
Redis config section, and the OTLP sink answering raw Export calls over loopback gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from benchmarks import _otlp_sink, _variants
from benchmarks._measure import LoadPlan
from benchmarks._procs import ProcessGroup, free_port
from benchmarks._render import markdown
from benchmarks._systems import switchboard_config
from benchmarks._variants import (
    redis_problem,
    redis_state_yaml,
    variant_cost,
    variant_targets,
    variants_markdown,
)
from benchmarks.run import parse_args
from benchmarks.tests.test_harness import _data
from router_service.config import parse_config

pytestmark = pytest.mark.timeout(10)

TRACING = "tracing on"
REDIS = "the Redis state backend"


def _block(plain: list[float], variant: list[float], **extra: Any) -> dict[str, Any]:
    runs = [
        {"round": i, "system": which, "rps": rps, "errors": 0, "other_cores": 0.1}
        for which, values in (("plain", plain), ("variant", variant))
        for i, rps in enumerate(values)
    ]
    return {"level": 16, "rounds": len(plain), "runs": runs, "note": None, **extra}


def _status(targets: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(t for t in targets if t["target"].startswith(prefix))


def test_cost_is_one_minus_the_ratio_of_medians() -> None:
    cost = variant_cost(_block([1000, 900, 1100], [850, 2000, 880]))
    assert cost is not None
    assert cost["plain_rps"] == 1000
    assert cost["variant_rps"] == 880
    assert cost["cost"] == pytest.approx(0.12)
    assert variant_cost(_block([1000], [])) is None
    assert variant_cost(None) is None


def test_targets_pass_and_fail_on_their_own_limits() -> None:
    sink = {"trace_requests": 12, "spans": 6000}
    data = {
        "variants": {
            "level": 16,
            "rounds": 3,
            "tracing": _block([1000, 1000, 1000], [860, 860, 860], sink=sink),  # 14 % ≤ 15 %
            "redis": _block([1000, 1000, 1000], [740, 740, 740], redis_keys=5),  # 26 % > 25 %
        }
    }
    targets = variant_targets(data)
    tracing, redis = _status(targets, TRACING), _status(targets, REDIS)
    assert tracing["status"] == "PASS"
    assert "14.0%" in tracing["detail"] and "6,000 spans" in tracing["detail"]
    assert redis["status"] == "FAIL"
    assert "26.0%" in redis["detail"] and "5 Redis keys" in redis["detail"]
    assert "## Variants" in "\n".join(variants_markdown(data))


@pytest.mark.parametrize(
    "variants",
    [
        None,  # --no-variants
        {},
        {"tracing": None, "redis": {"runs": [], "note": "Redis variant skipped: x"}},
    ],
)
def test_missing_data_is_not_applicable(variants: dict[str, Any] | None) -> None:
    targets = variant_targets({"variants": variants})
    assert [t["status"] for t in targets] == ["N/A", "N/A"]
    if variants and variants.get("redis"):
        assert "skipped: x" in _status(targets, REDIS)["detail"]


def test_a_sink_that_got_nothing_means_tracing_was_not_measured() -> None:
    block = _block([1000], [990], sink={"trace_requests": 0, "spans": 0})
    targets = variant_targets({"variants": {"tracing": block}})
    assert _status(targets, TRACING)["status"] == "N/A"


def test_old_runs_without_the_probe_still_render() -> None:
    data = _data(sb_p50=0.5)  # a run's data from before the probe: no `variants` key
    text = markdown(data)
    assert "## Variants" not in text
    assert _status(data["targets"], TRACING)["status"] == "N/A"
    assert _status(data["targets"], REDIS)["status"] == "N/A"


def test_redis_section_loads_with_the_bench_config() -> None:
    text = switchboard_config("http://127.0.0.1:1/v1", 2, 3) + redis_state_yaml("bench-test")
    config = parse_config(text, env={})
    assert config.state.backend == "redis"
    assert config.state.prefix == "bench-test"


def test_redis_problem_names_an_unreachable_server() -> None:
    assert "not reachable" in redis_problem(port=free_port(), timeout_s=1.0)


@pytest.fixture
def sink() -> Iterator[tuple[_otlp_sink.Counters, grpc.Channel]]:
    counters = _otlp_sink.Counters(_otlp_sink._span_counter())
    server, port = _otlp_sink.start(0, counters)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield counters, channel
    finally:
        channel.close()
        server.stop(None).wait(5)


def _export_request(spans: int) -> bytes:
    scope = ScopeSpans(spans=[Span(name=f"s{i}") for i in range(spans)])
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[scope])])
    return request.SerializeToString()


def test_sink_answers_export_calls_with_raw_bytes(
    sink: tuple[_otlp_sink.Counters, grpc.Channel],
) -> None:
    counters, channel = sink
    traces = channel.unary_unary(f"/{_otlp_sink.TRACES}/Export")  # no (de)serializers: bytes
    metrics = channel.unary_unary(f"/{_otlp_sink.METRICS}/Export")
    payload = _export_request(3)
    assert traces(payload, timeout=5) == b""
    assert traces(_export_request(2), timeout=5) == b""
    assert metrics(b"", timeout=5) == b""
    counts = counters.snapshot()
    assert counts["trace_requests"] == 2
    assert counts["spans"] == 5
    assert counts["trace_bytes"] == len(payload) + len(_export_request(2))
    assert counts["metrics_requests"] == 1


def test_sink_counts_line_is_read_back() -> None:
    log = 'otlp sink on 127.0.0.1:1\nSINK {"trace_requests": 1}\nSINK {"trace_requests": 4}\n'
    assert _otlp_sink.parse_counts(log) == {"trace_requests": 4}
    assert _otlp_sink.parse_counts("nothing\n") is None


def test_redis_variant_is_skipped_with_a_note_when_redis_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_variants, "redis_problem", lambda: "Redis not reachable at x (refused)")
    plan = LoadPlan(duration_s=1, warmup_s=0, wrk=None, tmp=tmp_path)
    with ProcessGroup(tmp_path) as group:  # nothing may be started
        ctx = _variants.Context(group, "http://127.0.0.1:1/v1", tmp_path, tmp_path, plan)
        block = _variants.probe_redis(ctx)
        assert group.procs == []
    assert block["note"] == "Redis variant skipped: Redis not reachable at x (refused)"
    target = _status(variant_targets({"variants": {"redis": block}}), REDIS)
    assert target["status"] == "N/A"
    assert "skipped" in target["detail"]


def test_variant_options() -> None:
    quick = parse_args(["--quick", "--no-variants"])
    assert quick.no_variants and quick.variant_rounds == 2
    full = parse_args(["--variant-level", "32"])
    assert not full.no_variants and full.variant_rounds == 5 and full.variant_level == 32


@pytest.mark.parametrize("which", ["plain", "variant"])
def test_a_variant_comparison_with_errors_fails(which: str) -> None:
    # a failed request is no answer (wrk counts answers only): the cost alone would pass
    block = _block([1000, 1000], [950, 950], redis_keys=5)
    next(r for r in block["runs"] if r["system"] == which)["errors"] = 40
    target = _status(variant_targets({"variants": {"redis": block}}), REDIS)
    assert target["status"] == "FAIL"
    assert "cost 5.0%" in target["detail"] and "40 errors" in target["detail"]


# A measured tree whose router loads the config and then exits at start, as one that cannot run
# with the variant's setting would (the bench runs `python -m router_service` from the tree).
_CRASHING_ROUTER = """\
import sys
if sys.argv[1:2] != ["check-config"]:
    sys.exit("router: crashed at start")
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("probe", ["tracing", "redis"])
def test_a_variant_stack_that_fails_fails_its_target(
    probe: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The variant's Switchboard stack failed (at start here; a crash or a hang under load
    alike): that was N/A 'variant failed', as if nothing had been tried. A failed run counts
    against the target as in the load matrix: FAIL, with what failed."""
    if probe == "redis":  # the variant checks Redis first: the suite's Redis (skip, CI: fail)
        request.getfixturevalue("redis_url")
    tree = tmp_path / "tree" / "router_service"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("")
    (tree / "__main__.py").write_text(_CRASHING_ROUTER)
    plan = LoadPlan(duration_s=0.3, warmup_s=0, wrk=None, tmp=tmp_path)
    with ProcessGroup(tmp_path / "logs") as group:
        ctx = _variants.Context(group, "http://127.0.0.1:1/v1", tmp_path, tree.parent, plan)
        block = _variants.run_variants(ctx, (probe,))[probe]
    assert block["failed"] and "crashed at start" in block["note"]
    name = TRACING if probe == "tracing" else REDIS
    target = _status(variant_targets({"variants": {probe: block}}), name)
    assert target["status"] == "FAIL"
    assert "variant failed" in target["detail"] and "crashed at start" in target["detail"]


def test_rounds_measured_before_a_failure_do_not_pass() -> None:
    # the traced stack hung in round 2 (measure: no request answered): rounds 0-1 would pass
    block = _block([1000, 1000], [950, 950], sink={"trace_requests": 0, "spans": 0})
    block |= {"failed": True, "note": "tracing variant failed: RuntimeError: … it hung"}
    target = _status(variant_targets({"variants": {"tracing": block}}), TRACING)
    assert target["status"] == "FAIL"
    assert "cost 5.0%" in target["detail"] and "it hung" in target["detail"]
