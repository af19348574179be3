"""A conversation sticks to a deployment per model it calls (a real router on loopback, memory
and Redis state): one session that also calls another model (an embedding of the same `user`,
a small model for its titles) keeps its chat model's deployment."""

from __future__ import annotations

from typing import Any

from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

TRANSIENT_S = 15.0


def config(fake_url: str, state: dict[str, Any]) -> dict[str, Any]:
    """`chat` tries alpha, then beta (`ordered`); alpha's failures only unstick (`off`), so
    only the sticky choice keeps a conversation on beta once alpha serves again."""
    return {
        "providers": {
            "alpha": {"base_url": fake_url, "keys": ["ka"], "thread_protection": "off"},
            "beta": {"base_url": fake_url, "keys": ["kb"]},
        },
        "models": {
            "chat": {
                "deployments": [
                    {"provider": "alpha", "model": "model-a"},
                    {"provider": "beta", "model": "model-b"},
                ]
            },
            "titles": {"deployments": [{"provider": "alpha", "model": "model-t"}]},
            "embedder": {"deployments": [{"provider": "alpha", "model": "embed-a"}]},
        },
        "server": {"port": 0},
        "cooldowns": {"transient_s": TRANSIENT_S},
        "state": state,
    }


def chat(model: str = "chat", *, user: str = "alice") -> pb.ChatRequest:
    params = chat_pb2.ChatParams(
        model=model,
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")],
        user=user,
    )
    return pb.ChatRequest(params=params, routing=routing_pb2.RoutingOptions())


async def on_beta(router: RouterHandle, fake: FakeUpstream, clock: ManualClock) -> str:
    """alice's conversation moved to beta by one failure of alpha, whose cooldown then ends;
    the session's key."""
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    moved = await router.stub.Chat(chat())
    assert moved.route.deployment == "beta/model-b"
    await router.runtime.afterwork.drain()  # the sticky write follows the answer
    clock.advance(TRANSIENT_S + 1)
    assert (await router.stub.Chat(chat())).route.deployment == "beta/model-b"  # stuck
    return str(moved.route.session_id)


async def test_an_embedding_of_the_same_user_keeps_the_chats_deployment(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake.base_url, state_section), clock=clock)
    session = await on_beta(router, fake, clock)
    params = embeddings_pb2.EmbeddingParams(model="embedder", text="hi", user="alice")
    embedded = await router.stub.Embed(pb.EmbedRequest(params=params))
    assert embedded.route.session_id == session  # one session: its bans and places shared
    await router.runtime.afterwork.drain()
    for _ in range(3):
        assert (await router.stub.Chat(chat())).route.deployment == "beta/model-b"
        await router.runtime.afterwork.drain()


async def test_a_chat_of_another_model_keeps_the_conversations_deployment(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake.base_url, state_section), clock=clock)
    await on_beta(router, fake, clock)
    titled = await router.stub.Chat(chat("titles"))
    assert titled.route.deployment == "alpha/model-t"
    await router.runtime.afterwork.drain()
    assert (await router.stub.Chat(chat())).route.deployment == "beta/model-b"
