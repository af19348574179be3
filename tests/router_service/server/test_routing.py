"""Routing end to end (issue #4): global cooldowns, sticky sessions, thread protection, pools,
context windows, statistics, and the PickRoute/ReportOutcome decision API."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import session_key
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually


def two_providers(fake_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "providers": {
            "alpha": {"base_url": fake_url, "keys": ["ka1", "ka2"]},
            "beta": {"base_url": fake_url, "keys": ["kb1"]},
        },
        "models": {
            "chat": {
                "deployments": [
                    {"provider": "alpha", "model": "model-a"},
                    {"provider": "beta", "model": "model-b"},
                ]
            }
        },
        "server": {"port": 0},
        "cooldowns": {"transient_s": 15},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


def ask(model: str = "chat", session: str = "", text: str = "hi") -> pb.ChatRequest:
    params = chat_pb2.ChatParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)]
    )
    return pb.ChatRequest(params=params, routing=routing_pb2.RoutingOptions(session_id=session))


async def test_a_failing_deployment_is_shed_at_once_and_retried_after_the_window(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(two_providers(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario.server_error(503, latency_ms=30), model="model-a")

    # 50 at once: those already on their way to model-a fail over; every caller succeeds.
    # Each request its own conversation: sessions play no part in this test.
    responses = await asyncio.gather(*(router.stub.Chat(ask(session=f"a{i}")) for i in range(50)))
    assert all(r.route.deployment == "beta/model-b" for r in responses)

    # Once the failure is known, inside the window, no request reaches model-a at all.
    before = fake.state.count(model="model-a")
    responses = await asyncio.gather(*(router.stub.Chat(ask(session=f"b{i}")) for i in range(50)))
    assert fake.state.count(model="model-a") == before
    assert all(len(r.route.attempts) == 1 for r in responses)

    clock.advance(15.0)
    fake.state.clear_scenarios()
    response = await router.stub.Chat(ask(session="c"))
    assert response.route.deployment == "alpha/model-a"  # after the window: tried again


async def test_a_conversation_sticks_to_its_deployment(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = two_providers(fake.base_url)
    config["models"]["chat"]["strategy"] = "weighted"
    router = await start_router(config)
    served = {(await router.stub.Chat(ask(session="conv-1"))).route.deployment for _ in range(20)}
    assert len(served) == 1
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    assert sum(d.successes for d in stats.deployments) == 20


async def test_provider_ban_moves_a_conversation_and_serves_one_session_at_a_time(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = two_providers(fake.base_url)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    config["models"]["chat"]["deployments"].insert(1, {"provider": "alpha", "model": "model-a2"})
    router = await start_router(config, clock=clock)

    first = await router.stub.Chat(ask(session="s1"))
    assert first.route.deployment == "alpha/model-a"
    # One error on alpha: the whole provider is banned for this conversation (not model-a2).
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    moved = await router.stub.Chat(ask(session="s1"))
    assert moved.route.deployment == "beta/model-b"
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    alpha = next(p for p in stats.sessions if p.provider == "alpha")
    # Operators see who is banned where: by the session's key, the one its answers report.
    assert list(alpha.banned_sessions) == [session_key("", "s1")] == [moved.route.session_id]
    clock.advance(16.0)  # the global cooldown is over, the session's ban is not
    for _ in range(3):
        assert (await router.stub.Chat(ask(session="s1"))).route.deployment == "beta/model-b"
    assert (await router.stub.Chat(ask(session="s2"))).route.deployment == "alpha/model-a"

    # While s3 streams from alpha (held mid-stream, however slow the machine), s4 cannot use
    # alpha at all.
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")
    stream = router.stub.ChatStream(
        pb.ChatStreamRequest(params=ask(session="s3").params, routing=ask(session="s3").routing)
    )
    async for event in stream:
        if event.HasField("chunk"):
            break
    assert (await router.stub.Chat(ask(session="s4"))).route.deployment == "beta/model-b"
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await router.stub.Chat(ask(model="alpha-only", session="s4"))
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stream.cancel()

    async def released() -> bool:
        active = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
        return all(not s.active for s in active.sessions)

    await eventually(released, what="the stream's active mark removed")
    assert (await router.stub.Chat(ask(model="alpha-only", session="s4"))).route.provider == "alpha"


async def test_model_skip_skips_only_the_failing_deployment(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = two_providers(fake.base_url)
    config["models"]["chat"]["deployments"].insert(1, {"provider": "alpha", "model": "model-a2"})
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    assert (await router.stub.Chat(ask(session="s1"))).route.deployment == "alpha/model-a2"
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    alpha = next(p for p in stats.sessions if p.provider == "alpha")
    skip = f"{session_key('', 's1')} alpha/model-a"
    assert (list(alpha.skipped), list(alpha.banned_sessions)) == ([skip], [])
    clock.advance(16.0)
    assert (await router.stub.Chat(ask(session="s1"))).route.deployment == "alpha/model-a2"
    assert (await router.stub.Chat(ask(session="s2"))).route.deployment == "alpha/model-a"


async def test_context_too_long_moves_to_a_larger_window_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = two_providers(fake.base_url)
    config["models"]["chat"]["deployments"] = [
        {"provider": "alpha", "model": "small", "context_window": 8000},
        {"provider": "alpha", "model": "also-small", "context_window": 4000},
        {"provider": "beta", "model": "large", "context_window": 128000},
    ]
    router = await start_router(config)
    too_long = {
        "error": {
            "message": "maximum context length is 8000 tokens",
            "code": "context_length_exceeded",
            "type": "invalid_request_error",
        }
    }
    fake.state.set_scenario(Scenario(status=400, error_body=too_long), model="small")

    response = await router.stub.Chat(ask())
    assert response.route.deployment == "beta/large"
    assert fake.state.count(model="also-small") == 0

    fake.state.set_scenario(Scenario(status=400, error_body=too_long), model="large")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # the upstream's own error


async def test_pools_are_virtual_models_listed_with_their_members(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = two_providers(fake.base_url)
    config["models"]["other"] = {"deployments": [{"provider": "beta", "model": "model-c"}]}
    config["pools"] = {"fast": {"groups": ["chat", "other"], "strategy": "ordered"}}
    router = await start_router(config)

    models = {m.id: m for m in (await router.stub.ListModels(pb.ListModelsRequest())).models}
    assert models["fast"].kind == pb.MODEL_KIND_POOL
    assert list(models["fast"].members) == ["chat", "other"]

    fake.state.set_scenario(Scenario.server_error(500), model="model-a")
    fake.state.set_scenario(Scenario.server_error(500), model="model-b")
    response = await router.stub.Chat(ask(model="fast"))
    assert response.route.deployment == "beta/model-c"


async def test_all_cooled_waits_for_the_soonest_within_the_deadline(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(two_providers(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario.server_error(500, times=2))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask(session="s1"))  # both deployments fail and cool down
    started = clock.now()
    response = await router.stub.Chat(ask(session="s2"), timeout=60)
    assert response.route.deployment == "alpha/model-a"  # cooled first, ends first
    assert clock.now() - started == pytest.approx(15.0, abs=0.5)  # it waited on the clock

    # The first conversation skips both (model-skip) for its thread cooldown; with nothing else
    # to serve it, the one not cooling is tried rather than the conversation refused.
    response = await router.stub.Chat(ask(session="s1"))
    assert response.route.deployment == "alpha/model-a"


async def test_one_failure_of_a_models_only_deployment_does_not_strand_the_conversation(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """model-skip (the default) after a blip of the only deployment: once its global cooldown
    is over the conversation is served again, not refused for the thread cooldown (600 s)."""
    clock = ManualClock()
    router = await start_router(two_providers(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario.server_error(502, times=1))
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(ask(model="alpha/model-a", session="s1"))
    clock.advance(16.0)  # past cooldowns.transient_s, far inside the thread cooldown
    response = await router.stub.Chat(ask(model="alpha/model-a", session="s1"))
    assert response.route.deployment == "alpha/model-a"
    assert response.completion.choices[0].message.text == "Echo: hi"


SERVICE_KEY = "sk-service-with-route-scope"
AS_SERVICE = (("authorization", f"Bearer {SERVICE_KEY}"),)


def with_route_client(config: dict[str, Any]) -> dict[str, Any]:
    config["auth"] = {
        "clients": [
            {
                "name": "svc",
                "key_sha256": hash_key(SERVICE_KEY),
                "scopes": ["chat", "models", "route", "admin"],
            }
        ]
    }
    return config


async def test_pick_route_is_refused_in_open_mode(router: RouterHandle) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.PickRoute(pb.PickRouteRequest(model="chain"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_pick_route_and_report_outcome(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start_router(with_route_client(base_config(fake.base_url)))
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    assert picked.deployment == "alpha/model-a"
    assert picked.api_key in {"sk-alpha-1", "sk-alpha-2"}
    assert picked.base_url == fake.base_url.rstrip("/")
    assert await router.leases_held() == 1

    report = await router.stub.ReportOutcome(
        pb.ReportOutcomeRequest(
            lease_id=picked.lease_id,
            outcome=routing_pb2.OUTCOME_UPSTREAM_ERROR,
            upstream_status=503,
        ),
        metadata=AS_SERVICE,
    )
    assert report.accepted
    assert await router.leases_held() == 0
    # The reported failure cooled the deployment exactly as a proxied one would.
    again = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    assert again.deployment == "beta/model-b"
    repeat = await router.stub.ReportOutcome(
        pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK),
        metadata=AS_SERVICE,
    )
    assert not repeat.accepted  # a lease is returned once


async def test_unreported_pick_expires_as_unknown(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = with_route_client(two_providers(fake.base_url))
    config["server"]["route_lease_ttl_s"] = 30
    router = await start_router(config, clock=clock)
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chat"), metadata=AS_SERVICE)
    clock.advance(31.0)
    assert await router.runtime.route_leases.sweep() == 1
    assert await router.leases_held() == 0
    late = await router.stub.ReportOutcome(
        pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK),
        metadata=AS_SERVICE,
    )
    assert not late.accepted
    stats = await router.admin.GetRoutingStats(
        admin_pb.GetRoutingStatsRequest(), metadata=AS_SERVICE
    )
    assert sum(d.successes for d in stats.deployments) == 0  # unknown is not a success


async def test_list_models_shows_only_what_the_caller_may_use(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = base_config(fake.base_url)
    config["auth"] = {
        "clients": [{"name": "narrow", "key_sha256": hash_key("sk-narrow"), "models": ["chain"]}]
    }
    router = await start_router(config)
    listed = await router.stub.ListModels(
        pb.ListModelsRequest(), metadata=(("authorization", "Bearer sk-narrow"),)
    )
    assert [m.id for m in listed.models] == ["chain"]


def one_place_at_alpha(base_url: str) -> dict[str, Any]:
    """alpha serves one conversation at a time (`provider-ban`, max_sessions 1): chats of
    `alpha-only`, embeddings of `embedder`."""
    config = two_providers(base_url)
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"  # max_sessions: 1
    config["models"]["alpha-only"] = {"deployments": [{"provider": "alpha", "model": "model-a"}]}
    config["models"]["embedder"] = {"deployments": [{"provider": "alpha", "model": "embed-a"}]}
    return config


async def holding_alpha(
    router: RouterHandle, fake: FakeUpstream, chat: pb.ChatRequest
) -> tuple[Any, str]:
    """`chat` streaming from alpha, held mid-stream (so alpha's one place is its conversation's),
    and its session's key (RouteInfo.session_id); the caller cancels the stream."""
    fake.state.set_scenario(Scenario(held_after_chunks=2), model="model-a")
    stream = router.stub.ChatStream(pb.ChatStreamRequest(params=chat.params, routing=chat.routing))
    session = ""
    async for event in stream:
        if event.HasField("route"):
            session = event.route.session_id
        if event.HasField("chunk"):
            return stream, session
    raise AssertionError("the held stream ended")


async def test_a_call_without_a_session_takes_a_place_of_max_sessions(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_place_at_alpha(fake.base_url))
    embed = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", text="hi"))
    stream, _ = await holding_alpha(router, fake, ask(model="alpha-only", session="s1"))
    # An embedding without a `user` has no session: it is a conversation of its own all the same.
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await router.stub.Embed(embed)
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    stream.cancel()

    async def released() -> bool:
        active = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
        return all(not s.active for s in active.sessions)

    await eventually(released, what="the stream's active mark removed")
    assert (await router.stub.Embed(embed)).route.provider == "alpha"
    assert await released()  # the embedding's place given back when it answered


async def test_a_chat_and_an_embedding_of_one_user_are_one_session(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(one_place_at_alpha(fake.base_url))
    chat = ask(model="alpha-only")
    chat.params.user = "alice"  # no session id: the `user` names the conversation
    stream, chat_session = await holding_alpha(router, fake, chat)
    # The same `user` on an embedding is the same conversation: it is let in beside it.
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="hi", user="alice")
    embedded = await router.stub.Embed(pb.EmbedRequest(params=params))
    stream.cancel()
    assert embedded.route.session_id == chat_session != ""
