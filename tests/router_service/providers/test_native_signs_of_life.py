"""A native stream's events that map to no chunk are the upstream's signs of life
(UPSTREAM_ALIVE), in their place among the chunks: what the engine's first-chunk and stall
windows start again at. Claude thinking with its text omitted (`thinking.display: "omitted"`)
sends only such events until its thinking block ends: the ping, the block's start and its
signature. Read from the Anthropic adapter against the fake upstream, in order, with no clock
involved (the windows' own timing is tests/e2e/test_anthropic_omitted_thinking.py's)."""

from __future__ import annotations

from clients import chat_params_from_openai
from clients.switchboard.v1 import chat_pb2
from router_service.clock import SYSTEM_CLOCK
from router_service.config import HttpConfig, ProviderConfig
from router_service.engine._stream_guard import is_meaningful
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.providers import AnthropicAdapter, ChatCall, create_http_client
from router_service.providers._base import UPSTREAM_ALIVE

OMITTED = {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}


def kind(chunk: chat_pb2.ChatCompletionChunk) -> str:
    if chunk is UPSTREAM_ALIVE:
        return "alive"
    return "content" if is_meaningful(chunk) else "opening"


async def test_events_of_omitted_thinking_are_signs_of_life_in_their_place(
    fake: FakeUpstream,
) -> None:
    fake.state.set_scenario(Scenario(reasoning="thinking it over"))
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 4096,
        "stream": True,
        "thinking": OMITTED,
    }
    params, _ = chat_params_from_openai(body)
    http = create_http_client(HttpConfig())
    config = ProviderConfig(kind="anthropic", base_url=fake.base_url, keys=["sk-ant"])  # type: ignore[list-item]
    adapter = AnthropicAdapter("claude", config, http, SYSTEM_CLOCK)
    call = ChatCall("claude-sonnet-4-5", "sk-ant", params, 5.0)

    async with http, adapter.stream_chat(call) as chunks:
        kinds = [kind(chunk) async for chunk in chunks]

    # message_start (the role), then ping, the thinking block's start and its signature_delta:
    # nothing for the caller, each a sign of life; the block's end carries it whole.
    assert kinds[:5] == ["opening", "alive", "alive", "alive", "content"]
    assert fake.state.count(model="claude-sonnet-4-5") == 1
