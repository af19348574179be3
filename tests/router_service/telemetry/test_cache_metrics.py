"""What the response cache did, as operators see it: `switchboard.cache.lookups` by result, the
`switchboard.cache` attribute on the request span, and tokens counted only for answers an
upstream produced (a hit used none)."""

from __future__ import annotations

from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream
from tests.router_service.telemetry.spans import attrs, ended
from tests.router_service.telemetry.test_metrics import samples, value

SERVER_CHAT = "switchboard.v1.RouterService/Chat"


async def test_lookups_are_counted_by_result_and_hits_use_no_tokens(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    first = await router.stub.Chat(chat())
    for _ in range(3):
        await router.stub.Chat(chat())
    bypass = chat()
    bypass.routing.cache = routing_pb2.CACHE_MODE_BYPASS
    await router.stub.Chat(bypass)
    events = [e async for e in router.stub.ChatStream(chat_stream())]
    stream_usage = events[-1].summary.usage

    found = samples(captured.prometheus_text())
    lookups = "switchboard_cache_lookups_total"
    chat_group = {"switchboard_model_group": "chain", "switchboard_stream": "false"}
    assert value(found, lookups, switchboard_cache="miss", **chat_group) == 1
    assert value(found, lookups, switchboard_cache="hit", **chat_group) == 3
    assert value(found, lookups, switchboard_cache="bypass", **chat_group) == 1
    assert value(found, lookups, switchboard_cache="miss", switchboard_stream="true") == 1
    # Every request counts, hits included, under its model group.
    requests = value(found, "switchboard_requests_total", switchboard_model_group="chain")
    assert requests == 6
    # Tokens: those of the miss, the bypass and the stream; none of the hits.
    tokens = value(found, "switchboard_client_tokens_total", gen_ai_token_type="input")
    prompt = first.completion.usage.prompt_tokens
    assert prompt > 0
    assert tokens == 2 * prompt + stream_usage.prompt_tokens


async def test_the_request_span_says_what_the_cache_did(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(base_config(fake.base_url, cache={"enabled": True}))
    await router.stub.Chat(chat())
    trace = await ended(captured, SERVER_CHAT)
    assert attrs(trace.one(SERVER_CHAT))["switchboard.cache"] == "miss"
    captured.exporter.clear()
    await router.stub.Chat(chat())
    trace = await ended(captured, SERVER_CHAT)
    assert attrs(trace.one(SERVER_CHAT))["switchboard.cache"] == "hit"
