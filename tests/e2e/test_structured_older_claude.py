"""Structured outputs at a Claude older than 4.5 (which refuses `output_config.format`, and
Converse's `outputConfig`, with a 400): the schema is not sent there as one, at Anthropic,
Bedrock and Vertex alike, but as a forced tool (tests/e2e/test_claude_json_schema_tool.py); a
4.5 or later Claude (or one whose name gives no version) still gets it as a structured output."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_claude_json_schema_tool import forced_tool
from tests.e2e.test_reasoning_sdk import HELLO, IAM, VERTEX, received

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}
OLDER = {
    "an-haiku-3-5": ("claude", "claude-3-5-haiku-20241022"),
    "an-sonnet-4": ("claude", "claude-sonnet-4-20250514"),
    "br-sonnet-3-5": ("br", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "vx-sonnet-3-5": ("vx-claude", "claude-3-5-sonnet-v2@20241022"),
}
NEWER = {
    "an-sonnet-4-5": ("claude", "claude-sonnet-4-5-20250929"),
    "an-unversioned": ("claude", "claude-x"),
    "br-sonnet-4-5": ("br", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    "vx-opus-4-6": ("vx-claude", "claude-opus-4-6"),
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"] |= {
        "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "br": {"kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": [IAM]},
        "vx-claude": {**VERTEX, "base_url": fake.url, "publisher": "anthropic"},
    }
    for name, (provider, model) in {**OLDER, **NEWER}.items():
        config["models"][name] = {"deployments": [{"provider": provider, "model": model}]}
    return await start_router(config)


def sent_format(body: dict[str, Any]) -> Any:
    """The structured output a Messages or Converse body carries, or None."""
    return (body.get("output_config") or {}).get("format") or body.get("outputConfig")


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", sorted(OLDER))
async def test_an_older_claude_gets_the_schema_as_a_forced_tool(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, streaming: bool
) -> None:
    answer: Any = await sdk.chat.completions.create(
        model=model, messages=HELLO, response_format=FORMAT, stream=streaming
    )

    text = (
        "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])
        if streaming
        else answer.choices[0].message.content
    )
    assert text == "Echo: hello"  # the fake answers text: said as it is
    sent = received(fake)
    assert sent_format(sent) is None
    (name, schema), _ = forced_tool(sent)
    assert (name, schema) == ("json_output", SCHEMA)


@pytest.mark.parametrize("model", sorted(NEWER))
async def test_a_later_claude_gets_the_schema(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    await sdk.chat.completions.create(model=model, messages=HELLO, response_format=FORMAT)

    assert sent_format(received(fake)) is not None
