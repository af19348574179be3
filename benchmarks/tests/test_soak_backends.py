"""The soak's backends and load mix, their pure parts: the Redis and sink rows, what the report
says about them, the Redis config on the soak's, which actions go over which transport; and the
Redis row read from the real local Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._soak_backends import (
    REDIS_FIGURES,
    RedisSampler,
    backend_lines,
    redis_figures,
    sink_figures,
)
from benchmarks._soak_config import CACHED_MODELS, soak_config
from benchmarks._soak_load import (
    ACTIONS,
    CACHED_MODEL,
    GRPC_ONLY,
    HTTP_ONLY,
    SLOW_MODEL,
    Mix,
    actions_for,
)
from benchmarks._soak_sample import verdict, verdict_lines
from benchmarks._variants import redis_state_yaml
from benchmarks.soak import parse_args
from router_service.config import load_config

pytestmark = pytest.mark.timeout(10)


def test_the_redis_row_reads_info_and_marks_what_a_server_lacks() -> None:
    memory = {"used_memory": 3 * 2**20}
    stats = {"tracking_total_keys": 7, "tracking_total_items": 9, "tracking_total_prefixes": 2}
    assert redis_figures(memory, stats, 40) == {
        "used_mib": 3.0,
        "tracking_keys": 7.0,
        "tracking_items": 9.0,
        "tracking_prefixes": 2.0,
        "keys": 40.0,
    }
    # Redis before 6 has no key tracking: its figures are unread (-1), left out of the trends.
    assert redis_figures(memory, {}, 0)["tracking_keys"] == -1.0


def test_the_sink_row_is_its_last_counts_line() -> None:
    log = 'otlp sink on 127.0.0.1:1\nSINK {"trace_requests": 2, "spans": 9}\n'
    log += 'SINK {"trace_requests": 5, "spans": 30}\n'
    assert sink_figures(log) == {"exports": 5.0, "spans": 30.0}
    assert sink_figures("otlp sink on 127.0.0.1:1\n") == {"exports": 0.0, "spans": 0.0}


def test_the_report_names_the_backends_used() -> None:
    assert backend_lines({}) == []
    notes = {"redis_prefix": "soak-x", "redis_keys": 1825, "sink": {"trace_requests": 52}}
    assert backend_lines(notes) == [
        "redis: state under soak-x:, 1,825 keys left, deleted",
        "tracing: the sink received 52 exports, 0 spans",
    ]


def test_growing_tracking_keys_are_judged_and_long_names_stay_aligned() -> None:
    rows = [
        (float(t), {"redis": {"tracking_keys": 36_000.0 * t / 60, "used_mib": 2.0}})
        for t in range(0, 240, 10)
    ]
    found = verdict(rows)
    assert found[("redis", "tracking_keys")].word == "GROWS"
    assert found[("redis", "used_mib")].word == "flat"
    lines = verdict_lines(found)
    assert len({len(line.rsplit("  ", 1)[0]) for line in lines}) == 1  # verdicts in one column


def test_the_responses_api_goes_over_http_only_and_admin_calls_over_grpc() -> None:
    assert set(actions_for("http")) == set(ACTIONS) - GRPC_ONLY
    assert set(actions_for("grpc")) == set(ACTIONS) - HTTP_ONLY
    assert actions_for("grpc", ["responses", "chat"]) == {"chat": ACTIONS["chat"]}
    assert actions_for("grpc", ["responses-stream"]) == {}
    assert actions_for("http", ["purge", "conversation"]) == {"conversation": 3}


def _mix(transport: str, actions: list[str], **extra: object) -> Mix:
    spec = {"transport": transport, "clients": [{"key": "sk-a", "weight": 1}], "seed": 3}
    return Mix({**spec, "actions": actions, **extra})


def test_the_cache_actions_ask_the_same_again_on_cached_models() -> None:
    mix = _mix("grpc", ["cached", "cached-bypass", "coalesce", "coalesce-cut"])
    drawn = [mix.next() for _ in range(200)]
    prompts = {r.body["messages"][0]["content"] for r in drawn if r.action == "cached"}
    assert 1 < len(prompts) <= 20  # a few prompts, asked again: hits
    assert all(r.bypass == (r.action == "cached-bypass") for r in drawn)
    assert {r.body["model"] for r in drawn if r.action.startswith("cached")} == {CACHED_MODEL}
    coalesced = [r for r in drawn if r.action.startswith("coalesce")]
    assert {r.body["model"] for r in coalesced} == {SLOW_MODEL}
    assert len({r.body["messages"][0]["content"] for r in coalesced}) <= 2  # one a second
    assert {r.timeout_s for r in coalesced if r.action == "coalesce-cut"} == {0.25}
    soak_cached = {"soak-cached", "soak-slow", "soak-embed"}
    assert set(CACHED_MODELS) == soak_cached


def test_admin_calls_need_the_admin_key() -> None:
    assert not set(_mix("grpc", []).actions) & GRPC_ONLY
    mix = _mix("grpc", ["purge", "clients"], admin_key="sk-admin")
    drawn = [mix.next() for _ in range(20)]
    assert {r.key for r in drawn} == {"sk-admin"}
    assert {r.body["model"] for r in drawn if r.action == "purge"} <= {"", CACHED_MODEL}


def test_the_soak_config_loads_with_redis_state(tmp_path: Path) -> None:
    path = tmp_path / "soak.yaml"
    path.write_text(soak_config("http://127.0.0.1:9/v1", 50051) + redis_state_yaml("soak-t"))
    config = load_config(str(path))
    assert config.state.backend == "redis" and config.state.prefix == "soak-t"
    args = parse_args(["--state", "redis", "--tracing"])
    assert args.state == "redis" and args.tracing
    assert parse_args([]).state == "memory"
    assert parse_args(["--actions", "responses"]).actions == ["responses"]  # all over HTTP


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--actions", "chat,teleport"], "no such action teleport"),
        (["--actions", "responses", "--transport", "grpc"], "none of responses goes over grpc"),
    ],
)
def test_actions_that_cannot_be_sent_are_refused(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert says in capsys.readouterr().err


def test_the_redis_row_from_the_local_redis(redis_url: str) -> None:
    # `redis_url`: the suite's Redis check (skips without Redis, fails under CI=true); the
    # sampler reads the same local Redis the soak uses.
    sampler = RedisSampler("soak-test-nothing-here")
    try:
        row = sampler()
    finally:
        sampler.close()
    assert set(row) == set(REDIS_FIGURES)
    assert row["used_mib"] > 0 and row["keys"] == 0
