"""Metrics as Prometheus scrapes them: the text parses, and the counters move as requests pass —
GenAI client metrics, attempts by outcome, fallbacks, streams, keys by state, cooldowns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import KeyPool
from router_service.server import reload_from, reloading
from router_service.telemetry import PrometheusListener, current
from router_service.telemetry._instruments import StateView
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually, free_port
from tests.http_edge.harness import Edge
from tests.replicas.harness import replica_config

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def ask(text: str = "hi", *, usage: bool = False, model: str = "chain") -> chat_pb2.ChatParams:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    params = chat_pb2.ChatParams(model=model, messages=[message])
    if usage:
        params.stream_options.include_usage = True
    return params


async def test_counters_move_as_requests_pass(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    before = samples(captured.prometheus_text())
    assert value(before, "switchboard_requests_total") == 0

    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    await router.stub.Chat(pb.ChatRequest(params=ask("one")))
    events = [e async for e in router.stub.ChatStream(pb.ChatStreamRequest(params=ask(usage=True)))]
    assert events[-1].WhichOneof("event") == "summary"
    await router.runtime.gauges.poll()

    after = samples(captured.prometheus_text())
    ok = {"switchboard_outcome": "OK"}
    assert value(after, "switchboard_requests_total", switchboard_stream="false", **ok) == 1
    assert value(after, "switchboard_requests_total", switchboard_stream="true", **ok) == 1
    failed = {"switchboard_deployment": "alpha/model-a", "switchboard_outcome": "UPSTREAM_ERROR"}
    assert value(after, "switchboard_attempts_total", **failed) == 1
    assert value(after, "switchboard_attempts_total", switchboard_deployment="beta/model-b") == 2
    assert value(after, "switchboard_fallbacks_total", switchboard_model_group="chain") == 1
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert value(after, duration, error_type="UPSTREAM_ERROR", gen_ai_provider_name="openai") == 1
    tokens = "gen_ai_client_token_usage_count"
    assert value(after, tokens, gen_ai_token_type="input") == 2
    assert value(after, tokens, gen_ai_token_type="output") == 2
    ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds_count"
    assert value(after, ttfc, switchboard_deployment="beta/model-b") == 1
    assert value(after, "gen_ai_client_operation_time_per_output_chunk_seconds_count") >= 1
    assert value(after, "switchboard_streams_active") == 0
    assert value(after, "switchboard_cooldowns_total", switchboard_cooldown_scope="deployment") == 1
    cooling = {"switchboard_cooldown_scope": "deployment", "switchboard_provider": "alpha"}
    assert value(after, "switchboard_cooldowns_active", **cooling) == 1
    assert value(after, "switchboard_keys", switchboard_key_state="active") == 3
    assert value(after, "switchboard_key_queue_duration_seconds_count") == 0  # nobody queued


async def test_queue_wait_for_a_busy_key_is_measured(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(queued_config(fake.base_url))
    fake.state.set_scenario(Scenario(latency_ms=50))  # runs after the release: they still wait
    await queued_behind_the_first(fake, router, [pb.ChatRequest(params=ask(model="solo"))] * 3)

    found = samples(captured.prometheus_text())
    waited = "switchboard_key_queue_duration_seconds"
    assert value(found, f"{waited}_count", switchboard_deployment="gamma/model-c") == 2
    assert value(found, f"{waited}_sum") >= 0.05  # the second waited for the first, at least


async def queued_behind_the_first(
    fake: FakeUpstream, router: RouterHandle, requests: list[pb.ChatRequest]
) -> None:
    """Send `requests` (to queued_config's `solo`) at once; the first is held upstream until
    the others are queued for gamma's one key (a latency alone could run out on a loaded
    machine before they arrive: no queue, nothing measured)."""
    fake.state.hold()
    calls = asyncio.gather(*(router.stub.Chat(request) for request in requests))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the first call upstream")

    async def others_queued() -> bool:  # polled: joining the queue is no event to wait on
        return router.runtime.pools["gamma"].waiting == len(requests) - 1

    await eventually(others_queued, what="the other calls queued for gamma's one key")
    fake.state.release()
    await calls


def queued_config(fake_url: str) -> dict[str, object]:
    """base_config plus `solo`: one deployment on a provider with one key that takes one call
    at a time, so concurrent calls queue for it."""
    config = base_config(fake_url)
    key = {"key": "sk-gamma-1", "max_in_flight": 1}
    config["providers"]["gamma"] = {"base_url": fake_url, "keys": [key], "queue_timeout_s": 5}
    config["models"]["solo"] = {"deployments": [{"provider": "gamma", "model": "model-c"}]}
    return config


async def test_keys_by_state_follow_the_pools(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario.invalid_key(), key="sk-alpha-1")
    fake.state.set_scenario(Scenario.rate_limited(retry_after="60"), key="sk-alpha-2")
    await router.stub.Chat(pb.ChatRequest(params=ask()))

    await router.runtime.gauges.poll()
    found = samples(captured.prometheus_text())
    alpha = {"switchboard_provider": "alpha"}
    assert value(found, "switchboard_keys", switchboard_key_state="disabled", **alpha) == 1
    assert value(found, "switchboard_keys", switchboard_key_state="cooling", **alpha) == 1
    assert value(found, "switchboard_keys", switchboard_key_state="active", **alpha) == 0
    assert value(found, "switchboard_cooldowns_active", switchboard_cooldown_scope="key") == 1
    assert value(found, "switchboard_cooldowns_active", switchboard_cooldown_scope="key_model") == 1
    scope = {"switchboard_cooldown_scope": "key_model"}
    assert value(found, "switchboard_cooldowns_total", **scope) == 1


async def test_a_stream_open_now_is_counted(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario(held_after_chunks=2))  # open until cancelled, however slow
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=ask()))
    async for event in call:
        if event.WhichOneof("event") == "chunk":
            break
    assert value(samples(captured.prometheus_text()), "switchboard_streams_active") == 1
    call.cancel()

    async def cancelled_counted() -> bool:
        found = samples(captured.prometheus_text())
        return bool(value(found, "switchboard_requests_total", switchboard_outcome="CANCELLED"))

    await eventually(cancelled_counted, what="the cancelled request counted")
    found = samples(captured.prometheus_text())
    assert value(found, "switchboard_streams_active") == 0
    cancelled = {"switchboard_outcome": "CANCELLED", "switchboard_deployment": "alpha/model-a"}
    assert value(found, "switchboard_attempts_total", **cancelled) == 1


async def test_the_router_listener_serves_prometheus_text(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url))
    await router.stub.Chat(pb.ChatRequest(params=ask()))
    with PrometheusListener("127.0.0.1", 0) as listener:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{listener.port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert value(samples(response.text), "switchboard_requests_total") == 1


async def test_the_edge_serves_metrics(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Callable[..., Awaitable[Edge]],
    captured: TelemetryCapture,
) -> None:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router)
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        body = {"model": "chain", "messages": [{"role": "user", "content": "hi"}]}
        assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
        response = await http.get("/metrics")
    assert response.status_code == 200
    found = samples(response.text)
    assert value(found, "switchboard_requests_total") == 1  # the router's, same process here
    server = {"http_route": "/v1/chat/completions", "http_response_status_code": "200"}
    assert value(found, "http_server_request_duration_seconds_count", **server) == 1


async def test_metrics_off_is_a_404_at_the_edge(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Callable[..., Awaitable[Edge]]
) -> None:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router)
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_the_read_cache_is_counted_on_shared_state(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    router = await start_router(replica_config(fake.base_url, redis_url, redis_prefix))
    for _ in range(3):  # one conversation: its keys are read from Redis once
        await router.stub.Chat(pb.ChatRequest(params=ask("same conversation")))
    await router.runtime.gauges.poll()

    found = samples(captured.prometheus_text())
    name = "switchboard_state_read_cache_total"
    assert value(found, name, switchboard_cache_result="miss") >= 1
    assert value(found, name, switchboard_cache_result="hit") >= 2
    assert (
        value(found, name, switchboard_cache_result="hit")
        == (router.runtime.store.read_cache_counts()["hit"])
    )


def test_runtimes_on_one_store_report_its_read_cache_once(captured: TelemetryCapture) -> None:
    """A reload's old and new runtime may both have a view for a moment: the read cache's totals
    are the one store's, so they are not added up, while per-runtime gauges still are."""
    metrics = current().metrics
    for index in range(2):
        view = StateView()
        view.read_cache[(("switchboard.cache.result", "hit"),)] = 40 + index
        view.keys[(("switchboard.provider", "alpha"), ("switchboard.key.state", "active"))] = 1
        metrics.views[index] = view
    try:
        found = samples(captured.prometheus_text())
    finally:
        metrics.views.clear()
    assert value(found, "switchboard_state_read_cache_total", switchboard_cache_result="hit") == 41
    assert value(found, "switchboard_keys", switchboard_key_state="active") == 2


async def test_replicas_report_the_keys_in_flight_they_hold(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """Two replicas on one Redis, one call each on the same key: each replica's gauge counts its
    own call, so the sum over replicas (what the dashboard shows) is the key's 2 — while the
    admin's in-flight count is the shared one on either replica."""
    config = replica_config(fake.base_url, redis_url, redis_prefix)
    config["providers"]["alpha"]["keys"] = ["k1"]
    replicas = [await start_router(config) for _ in range(2)]
    fake.state.set_scenario(Scenario(latency_ms=60_000))
    calls = [asyncio.ensure_future(r.stub.Chat(pb.ChatRequest(params=ask()))) for r in replicas]
    try:

        async def both_upstream() -> bool:
            return fake.state.in_flight == 2

        await eventually(both_upstream, what="both calls at the upstream")
        for replica in replicas:
            pool = replica.runtime.pools["alpha"]

            async def both_leases(pool: KeyPool = pool) -> bool:  # records may lag by 2 ms
                return (await pool.snapshot())[0].in_flight == 2

            await eventually(both_leases, what="both leases in the shared count")
            assert (await pool.snapshot())[0].held_here == 1
            await replica.runtime.gauges.poll()
        found = samples(captured.prometheus_text())
        assert value(found, "switchboard_key_in_flight", switchboard_provider="alpha") == 2
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


async def test_counters_exist_at_zero_from_the_start(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture, tmp_path: Path
) -> None:
    """A series born at its first increment is born at 1, and `increase()` misses that one:
    the first failed reload, the first retry, fallback or cooldown must count from 0."""
    router = await start_router(base_config(fake.base_url))
    path = tmp_path / "router.yaml"
    path.write_text("providers: 42\n")  # a file that does not load
    async with reloading(router.server, path):
        with PrometheusListener("127.0.0.1", 0) as listener:
            url = f"http://127.0.0.1:{listener.port}/metrics"
            async with httpx.AsyncClient() as http:
                before = samples((await http.get(url)).text)
                await reload_from(router.server, path)
                after = samples((await http.get(url)).text)

    def at(found: Samples, name: str, **labels: str) -> float | None:
        return found.get((name, frozenset(labels.items())))

    failed = {"outcome": "failed"}
    assert at(before, "switchboard_config_reloads_total", **failed) == 0
    assert at(after, "switchboard_config_reloads_total", **failed) == 1
    chain = {"gen_ai_operation_name": "chat", "switchboard_model_group": "chain"}
    alpha = {**chain, "switchboard_deployment": "alpha/model-a"}  # two keys: retries
    beta = {**chain, "switchboard_deployment": "beta/model-b"}  # one key: no retry possible
    assert at(before, "switchboard_retries_total", **alpha) == 0
    assert at(before, "switchboard_retries_total", **beta) is None
    assert at(before, "switchboard_fallbacks_total", **alpha) == 0
    assert at(before, "switchboard_fallbacks_total", **beta) == 0
    for provider in ("alpha", "beta"):
        for scope in ("key_model", "key", "deployment"):
            labels = {"switchboard_provider": provider, "switchboard_cooldown_scope": scope}
            assert at(before, "switchboard_cooldowns_total", **labels) == 0
    ban = {"switchboard_provider": "alpha", "switchboard_session_ban_kind": "ban"}
    assert at(before, "switchboard_session_bans_total", **ban) == 0


async def test_a_replica_that_lost_redis_says_so_in_its_metrics(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    """Redis at a closed port: the replica serves from its local state, and the scrape shows it
    (degraded, one outage, calls answered locally) where before only one log line did."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    router = await start_router(replica_config(fake.base_url, closed, "lost"))
    await router.stub.Chat(pb.ChatRequest(params=ask()))  # served, on local state
    await router.runtime.gauges.poll()
    with PrometheusListener("127.0.0.1", 0) as listener:
        async with httpx.AsyncClient() as http:
            found = samples((await http.get(f"http://127.0.0.1:{listener.port}/metrics")).text)
    assert value(found, "switchboard_state_degraded") == 1
    assert value(found, "switchboard_state_outages_total") == 1
    assert value(found, "switchboard_state_fallbacks_total") >= 1


async def test_a_replica_on_redis_reports_it_reachable(
    fake: FakeUpstream,
    start_router: StartRouter,
    captured: TelemetryCapture,
    redis_url: str,
    redis_prefix: str,
) -> None:
    router = await start_router(replica_config(fake.base_url, redis_url, redis_prefix))
    await router.stub.Chat(pb.ChatRequest(params=ask()))
    await router.runtime.gauges.poll()
    found = samples(captured.prometheus_text())
    assert ("switchboard_state_degraded", frozenset()) in found
    assert value(found, "switchboard_state_degraded") == 0
    assert value(found, "switchboard_state_outages_total") == 0
