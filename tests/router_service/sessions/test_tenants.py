"""Sessions are per client (a real router on loopback, memory and Redis state): one client's
failures never refuse another client's conversation that happens to open with the same words,
use the same `user` or the same session id; the client's own conversation stays protected and is
told when it may come back; absurd session ids are refused; state keys hold no user name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
import redis

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.sessions import MAX_SESSION_ID_BYTES, session_key
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

KEYS = {"tenant-a": "sk-tenant-a", "tenant-b": "sk-tenant-b"}
THREAD_COOLDOWN_S = 600.0
TRANSIENT_S = 15.0


def auth(client: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {KEYS[client]}"),)


def tenants_config(fake_url: str, state: dict[str, str]) -> dict[str, Any]:
    """Two deployments of `small-fast` on providers that ban a conversation that failed on them
    (provider-ban: the rule that refuses, where model-skip would try a skipped deployment when
    nothing else is left), two clients with keys."""
    banning = {"thread_protection": "provider-ban", "max_sessions": 10}
    return {
        "providers": {
            "alpha": {"base_url": fake_url, "keys": ["ka"], **banning},
            "beta": {"base_url": fake_url, "keys": ["kb"], **banning},
        },
        "models": {
            "small-fast": {
                "deployments": [
                    {"provider": "alpha", "model": "model-a"},
                    {"provider": "beta", "model": "model-b"},
                ]
            },
            "embedder": {"deployments": [{"provider": "alpha", "model": "embed-a"}]},
        },
        "server": {"port": 0},
        "cooldowns": {"transient_s": TRANSIENT_S},
        "sessions": {"thread_cooldown_s": THREAD_COOLDOWN_S},
        "state": state,
        "auth": {
            "clients": [
                {"name": name, "key_sha256": hash_key(key), "scopes": ["chat", "embed", "route"]}
                for name, key in KEYS.items()
            ]
        },
    }


def ask(text: str = "hi", *, session: str = "", user: str | None = None) -> pb.ChatRequest:
    params = chat_pb2.ChatParams(
        model="small-fast", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)]
    )
    if user is not None:
        params.user = user
    return pb.ChatRequest(params=params, routing=routing_pb2.RoutingOptions(session_id=session))


# The three ways a conversation gets its id: all of them per client.
NAMINGS: dict[str, Callable[[], pb.ChatRequest]] = {
    "opening": lambda: ask("hi"),
    "user": lambda: ask("hi", user="alice@example.com"),
    "session_id": lambda: ask("hi", session="thread-1"),
}


async def failed_for_a(fake: FakeUpstream, router: RouterHandle, request: pb.ChatRequest) -> None:
    """Client A's conversation fails on both deployments (each provider banned for it for the
    thread cooldown), then the global cooldowns pass: only session rules remain."""
    fake.state.set_scenario(Scenario.server_error(500, times=2))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(request, metadata=auth("tenant-a"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    fake.state.clear_scenarios()


@pytest.mark.parametrize("naming", sorted(NAMINGS))
async def test_one_clients_failures_do_not_refuse_another_clients_conversation(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str], naming: str
) -> None:
    clock = ManualClock()
    router = await start_router(tenants_config(fake.base_url, state_section), clock=clock)
    await failed_for_a(fake, router, NAMINGS[naming]())
    clock.advance(TRANSIENT_S + 1)

    # Client B opens the same way: its own conversation, served.
    served = await router.stub.Chat(NAMINGS[naming](), metadata=auth("tenant-b"))
    assert served.route.deployment == "alpha/model-a"

    # Client A's conversation stays protected, and learns when a deployment is usable again.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(NAMINGS[naming](), metadata=auth("tenant-a"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert "session_provider_ban" in details.message
    assert details.retry_after_s == pytest.approx(THREAD_COOLDOWN_S - TRANSIENT_S - 1, abs=1)

    clock.advance(THREAD_COOLDOWN_S)  # the thread cooldown is over: A is served again
    again = await router.stub.Chat(NAMINGS[naming](), metadata=auth("tenant-a"))
    assert again.route.deployment == "alpha/model-a"


async def test_the_http_refusal_carries_retry_after_and_only_for_the_client_that_failed(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    clock = ManualClock()
    router = await start_router(tenants_config(fake.base_url, {"backend": "memory"}), clock=clock)
    edge = await start_edge(router)
    await failed_for_a(fake, router, ask("hi"))
    clock.advance(TRANSIENT_S + 1)
    body = {"model": "small-fast", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        refused = await http.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-tenant-a"}
        )
        served = await http.post(
            "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-tenant-b"}
        )
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "no_capacity"
    assert int(refused.headers["retry-after"]) == THREAD_COOLDOWN_S - TRANSIENT_S - 1
    assert served.status_code == 200


async def test_pick_route_follows_the_same_per_client_rules(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(tenants_config(fake.base_url, {"backend": "memory"}), clock=clock)
    await failed_for_a(fake, router, ask(session="thread-1"))
    clock.advance(TRANSIENT_S + 1)
    pick = pb.PickRouteRequest(
        model="small-fast", routing=routing_pb2.RoutingOptions(session_id="thread-1")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.PickRoute(pick, metadata=auth("tenant-a"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert "session_provider_ban" in details.message
    assert details.retry_after_s == pytest.approx(THREAD_COOLDOWN_S - TRANSIENT_S - 1, abs=1)
    picked = await router.stub.PickRoute(pick, metadata=auth("tenant-b"))
    assert picked.deployment == "alpha/model-a"
    assert picked.session_id == session_key("tenant-b", "thread-1")


async def test_a_long_session_id_is_refused_naming_its_param(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    router = await start_router(tenants_config(fake.base_url, {"backend": "memory"}))
    longest = "x" * MAX_SESSION_ID_BYTES
    assert (await router.stub.Chat(ask(session=longest), metadata=auth("tenant-a"))).route
    too_long = "é" * (MAX_SESSION_ID_BYTES // 2 + 1)  # bytes count, not characters
    routing = routing_pb2.RoutingOptions(session_id=too_long)
    embed = pb.EmbedRequest(
        params=embeddings_pb2.EmbeddingParams(model="embedder", text="hi"), routing=routing
    )
    calls = [
        router.stub.Chat(ask(session=too_long), metadata=auth("tenant-a")),
        router.stub.Embed(embed, metadata=auth("tenant-a")),
        router.stub.PickRoute(
            pb.PickRouteRequest(model="small-fast", routing=routing), metadata=auth("tenant-a")
        ),
    ]
    before = fake.state.count()
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details_from_rpc_error(caught.value).openai_param == "routing.session_id"
    edge = await start_edge(router)
    body = {"model": "small-fast", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer sk-tenant-a", "x-session-id": "s" * 3000}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        refused = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "x-session-id"
    assert fake.state.count() == before  # nothing went upstream


def test_session_keys_are_per_client_fixed_length_and_opaque() -> None:
    keys = {
        session_key(client, session)
        for client in ("", "tenant-a", "tenant-b")
        for session in ("user:alice@example.com", "x" * 256)
    }
    assert len(keys) == 6
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)
    assert session_key("tenant-a", "s") == session_key("tenant-a", "s")  # stable
    assert session_key("ab", "c") != session_key("a", "bc")  # the split is part of the hash
    assert session_key("tenant-a", "") == ""  # no session: nothing is kept


async def test_redis_holds_no_user_name_and_no_raw_session_id(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    config = tenants_config(fake.base_url, {"backend": "redis", "url": redis_url})
    config["state"]["prefix"] = redis_prefix
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"  # a ban group too
    clock = ManualClock()
    router = await start_router(config, clock=clock)
    user, session = "alice@example.com", "thread-" + "q" * 200
    for request in (ask(user=user), ask(session=session)):
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        served = await router.stub.Chat(request, metadata=auth("tenant-a"))
        assert served.route.deployment == "beta/model-b"  # alpha failed once, then banned
        clock.advance(TRANSIENT_S + 1)  # model-a's global cooldown over
    await router.runtime.afterwork.drain()

    stored = redis_contents(redis_url, redis_prefix)
    keys = {session_key("tenant-a", f"user:{user}"), session_key("tenant-a", session)}
    for key in keys:  # sticky choice, ban deadline and the ban group's member, by key
        assert f"{redis_prefix}:val:sticky:{key}:small-fast" in stored
        assert f"{redis_prefix}:dl:sban:{key}:alpha" in stored
    assert keys <= {m.split("\n")[-1] for m in stored[f"{redis_prefix}:grp:banned:alpha"]}
    text = repr(stored)
    assert "alice" not in text and "thread-" not in text


def redis_contents(url: str, prefix: str) -> dict[str, list[str]]:
    """Every key under `prefix` with what names things inside it: a zset's members, a hash's
    fields, a string's value."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        found: dict[str, list[str]] = {}
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            kind = client.type(key)
            if kind == "zset":
                found[key] = [str(member) for member in client.zrange(key, 0, -1)]
            elif kind == "hash":
                found[key] = [str(field) for field in client.hkeys(key)]
            else:
                found[key] = [str(client.get(key))]
        return found
    finally:
        client.close()
