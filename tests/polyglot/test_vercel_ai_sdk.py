"""The Vercel AI SDK (`ai` + `@ai-sdk/openai`, Node) as a user points it at Switchboard:
tests/polyglot/vercel/ai_sdk.mjs runs `generateText`, `streamText`, a tool with `execute` over
`stopWhen` steps and a zod `Output.object`, first on `openai(model)` (the Responses API, the
provider's default) then on `openai.chat(model)`, against a real edge + router + fake upstream.

The npm packages (package.json, pinned by package-lock.json) are installed once into
`.tools/polyglot-vercel/` (tests/polyglot/node_harness.py): without node/npm or a registry the
test skips, except under CI=true where that fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.http_edge.harness import Edge
from tests.polyglot.node_harness import node_command, run_node

SOURCE = Path(__file__).resolve().parent / "vercel"
StartEdge = Callable[..., Awaitable[Edge]]


@pytest.fixture(scope="module")
def ai_sdk() -> list[str]:
    return node_command(SOURCE, "ai_sdk.mjs", "polyglot-vercel")


@pytest.fixture
async def edge(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> Edge:
    """One group per behaviour the script needs, each on its own upstream model (the fake's
    scenarios are per model): text echoes, a tool call until the tool answered, JSON."""
    config = base_config(fake.base_url)
    for name in ("plain", "tools", "json"):
        config["models"][name] = {"deployments": [{"provider": "alpha", "model": f"m-{name}"}]}
    calls_tool = Scenario(tool_call=True, tool_arguments={"city": "Paris"})
    fake.state.set_scenario(calls_tool, model="m-tools")
    fake.state.set_scenario(Scenario(content='{"city": "Paris", "sunny": true}'), model="m-json")
    return await start_edge(await start_router(config))


@pytest.mark.timeout(300)  # the first run installs the npm packages
async def test_the_vercel_ai_sdk_on_the_responses_and_chat_apis(
    ai_sdk: list[str], edge: Edge, fake: FakeUpstream
) -> None:
    seen = await run_node(ai_sdk, env={"EDGE_URL": edge.base_url})
    for api in ("responses", "chat"):
        run: dict[str, Any] = seen[api]
        assert run["generate"] == {"text": "Echo: hello there", "finish": "stop", "usage": 7}, api
        assert run["again"] == "Echo: and again"  # the history sent back whole
        assert run["stream"] == {"text": "Echo: stream this please", "finish": "stop"}
        assert run["tools"] == {
            "text": "Echo: weather in Paris?",
            "steps": 2,  # the call, then the answer to its result
            "calls": [{"city": "Paris"}],
            "results": ["sunny in Paris"],
        }
        assert run["streamedTools"] == {"text": "Echo: weather in Oslo?", "steps": 2}
        assert run["object"] == {"city": "Paris", "sunny": True}
        assert run["warnings"] == []
    # On the Responses API the SDK's default (`store` true) sends the earlier answer as an
    # `item_reference`: resolved from the stored response, it reaches the upstream whole.
    referenced_turns = [c.body["messages"] for c in fake.state.calls() if c.model == "m-plain"]
    for api in ("responses", "chat"):
        assert seen[api]["referenced"] == {"text": "Echo: x"}, api
    assert referenced_turns[3] == [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
        {"role": "assistant", "content": "Echo: hello there"},
        {"role": "user", "content": [{"type": "text", "text": "x"}]},
    ]
    tool_turns = [c.body for c in fake.state.calls() if c.model == "m-tools"]
    assert tool_turns[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_fake_1",
        "content": "sunny in Paris",
    }
