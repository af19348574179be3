"""OpenAI's `allowed_tools` tool choice (the tools a turn may call, of all those declared) at
Claude, Bedrock, Gemini and Cohere, which have no such choice: the tools they get are the allowed
ones, and `required` forces a call of one of them. It was dropped at Claude, Bedrock and Gemini
(every declared tool could be called, and a `required` turn could answer without any call);
Cohere had every tool and a call forced, `auto` or not."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_sdk import config as claude_config
from tests.e2e.test_bedrock_sdk import GOOD, PROFILE_ID

ASK: Any = [{"role": "user", "content": "What time is it in Oslo?"}]
TOOLS: Any = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "get_time", "delete_everything")
]


def allowed(mode: str, *names: str) -> Any:
    tools = [{"type": "function", "function": {"name": name}} for name in names]
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = claude_config(fake)
    out["providers"]["gemini"] = {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g"]}
    out["models"]["gem"] = {"deployments": [{"provider": "gemini", "model": "gemini-2.5-flash"}]}
    out["providers"]["co"] = {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]}
    out["models"]["command"] = {"deployments": [{"provider": "co", "model": "command-a"}]}
    aws = {"kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": [GOOD]}
    out["providers"]["aws"] = aws
    out["models"]["converse"] = {"deployments": [{"provider": "aws", "model": PROFILE_ID}]}
    return await start_router(out)


def sent(fake: FakeUpstream) -> tuple[list[str], Any]:
    """The names of the tools the upstream got, and its tool choice."""
    record = fake.state.last()
    assert record is not None and record.status == 200
    body = record.body
    if "contents" in body:  # Gemini
        names = [d["name"] for t in body["tools"] for d in t["functionDeclarations"]]
        return names, body.get("toolConfig")
    if "toolConfig" in body:  # Bedrock's Converse
        config = body["toolConfig"]
        return [t["toolSpec"]["name"] for t in config["tools"]], config.get("toolChoice")
    if body.get("model") == "command-a":  # Cohere: OpenAI's tool shape
        return [tool["function"]["name"] for tool in body["tools"]], body.get("tool_choice")
    return [tool["name"] for tool in body["tools"]], body.get("tool_choice")


@pytest.mark.parametrize(
    ("model", "required", "auto"),
    [
        ("sonnet", {"type": "any"}, None),
        (
            "gem",
            {"functionCallingConfig": {"mode": "ANY"}},
            {"functionCallingConfig": {"mode": "AUTO"}},
        ),
        ("command", "REQUIRED", None),
        ("converse", {"any": {}}, {"auto": {}}),
    ],
)
async def test_only_the_allowed_tools_may_be_called(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, required: Any, auto: Any
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_name="get_time"))
    answer = await sdk.chat.completions.create(
        model=model, messages=ASK, tools=TOOLS, tool_choice=allowed("required", "get_time")
    )
    [call] = answer.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_time"
    assert sent(fake) == (["get_time"], required)
    fake.state.set_scenario(Scenario())
    await sdk.chat.completions.create(
        model=model,
        messages=ASK,
        tools=TOOLS,
        tool_choice=allowed("auto", "get_weather", "get_time"),
    )
    assert sent(fake) == (["get_weather", "get_time"], auto)
