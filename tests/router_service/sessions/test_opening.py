"""A conversation named by its opening (no session id, no `user`) stays one conversation while
its client moves its prompt-cache breakpoints (`cache_control`) from turn to turn, as the
Anthropic SDK's users and Claude-through-OpenAI callers do: the real SDKs through the edge."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.router_service.sessions.test_sticky_per_model import TRANSIENT_S, config

CACHED = {"type": "ephemeral"}
SYSTEM = "You are a careful assistant."


def anthropic_turns() -> list[dict[str, Any]]:
    """Two turns of one conversation, each with its breakpoint on its last message."""
    opening: dict[str, Any] = {"type": "text", "text": "fix the bug"}
    first: dict[str, Any] = {"role": "user", "content": [opening]}
    return [
        {
            "system": [{"type": "text", "text": SYSTEM, "cache_control": CACHED}],
            "messages": [{**first, "content": [{**opening, "cache_control": CACHED}]}],
        },
        {
            "system": [{"type": "text", "text": SYSTEM, "cache_control": CACHED}],
            "messages": [
                first,  # as Anthropic's docs move it: the breakpoint now on the last turn
                {"role": "assistant", "content": "Done."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "test it", "cache_control": CACHED}],
                },
            ],
        },
    ]


async def test_a_moved_cache_breakpoint_keeps_a_messages_conversation_on_its_deployment(
    fake: FakeUpstream, start_router: StartRouter, start_edge: Any
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake.base_url, {"backend": "memory"}), clock=clock)
    edge = await start_edge(router)
    first, second = anthropic_turns()
    async with anthropic.AsyncAnthropic(base_url=edge.base_url, api_key="sk-x", timeout=10) as sdk:
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        moved = await sdk.messages.with_raw_response.create(model="chat", max_tokens=16, **first)
        assert moved.headers["x-switchboard-deployment"] == "beta/model-b"
        clock.advance(TRANSIENT_S + 1)  # alpha serves again: only the sticky choice holds
        again = await sdk.messages.with_raw_response.create(model="chat", max_tokens=16, **second)
    assert again.headers["x-switchboard-deployment"] == "beta/model-b"


_PLAIN = {"type": "text", "text": "fix the bug"}
# The opening's part with keys of its own beside its breakpoint (in the caller's order, not
# sorted): without the breakpoint it still says what it said.
_KEYED = {"type": "text", "text": "fix the bug", "title": "bug 7", "context": "repo x"}


@pytest.mark.parametrize(
    ("opening", "unmarked"),
    [(_PLAIN, "fix the bug"), (_KEYED, [_KEYED])],  # written plainly; the same part, unmarked
    ids=["plain", "beside-other-keys"],
)
async def test_a_moved_cache_breakpoint_keeps_a_chat_conversation_on_its_deployment(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: Any,
    opening: dict[str, Any],
    unmarked: Any,
) -> None:
    clock = ManualClock()
    router = await start_router(config(fake.base_url, {"backend": "memory"}), clock=clock)
    edge = await start_edge(router)
    first: list[Any] = [{"role": "user", "content": [{**opening, "cache_control": CACHED}]}]
    second: list[Any] = [
        {"role": "user", "content": unmarked},  # its breakpoint gone
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": [{"type": "text", "text": "test it", "cache_control": CACHED}]},
    ]
    async with openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="sk-x") as sdk:
        fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
        moved = await sdk.chat.completions.with_raw_response.create(model="chat", messages=first)
        assert moved.headers["x-switchboard-deployment"] == "beta/model-b"
        clock.advance(TRANSIENT_S + 1)
        again = await sdk.chat.completions.with_raw_response.create(model="chat", messages=second)
    assert again.headers["x-switchboard-deployment"] == "beta/model-b"


def _grpc_turn(*parts: tuple[str, dict[str, Any]]) -> pb.ChatRequest:
    """A gRPC chat of user turns, each one text part with its unmodelled keys written by
    hand (`json.dumps`: with spaces, not as the router re-encodes them); "Done." between."""
    messages: list[chat_pb2.ChatMessage] = []
    for text, extra in parts:
        if messages:
            messages.append(chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text="Done."))
        part = chat_pb2.ContentPart(text=chat_pb2.TextPart(text=text), extra_json=json.dumps(extra))
        content = chat_pb2.ContentParts(parts=[part])
        messages.append(chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, parts=content))
    return pb.ChatRequest(params=chat_pb2.ChatParams(model="chat", messages=messages))


async def test_a_moved_breakpoint_keeps_a_grpc_conversation_whose_keys_are_written_by_hand(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A gRPC caller writes a part's `extra_json` itself: the opening names one conversation
    whether its breakpoint is there (the router re-encodes the part without it) or not."""
    clock = ManualClock()
    router = await start_router(config(fake.base_url, {"backend": "memory"}), clock=clock)
    title = {"title": "bug 7"}
    fake.state.set_scenario(Scenario.server_error(500, times=1), model="model-a")
    moved = await router.stub.Chat(_grpc_turn(("fix the bug", {**title, "cache_control": CACHED})))
    assert moved.route.deployment == "beta/model-b"
    clock.advance(TRANSIENT_S + 1)
    marked = {"cache_control": CACHED}
    again = await router.stub.Chat(_grpc_turn(("fix the bug", title), ("test it", marked)))
    assert again.route.deployment == "beta/model-b"
