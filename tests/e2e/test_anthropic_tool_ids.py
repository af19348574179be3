"""A conversation's tool call ids reach Claude as Anthropic takes them (`^[a-zA-Z0-9_-]+$`),
whichever provider made them: Kimi's `functions.get_weather:0` (a failover, a model switched
mid-session) was sent as it was, and Anthropic refused the whole request with a 400."""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_anthropic_sdk import router  # noqa: F401

IDS = ["functions.get_weather:0", "functions.get_weather:1", "call|x", "functions_get_weather_0"]


def conversation(ids: list[str]) -> Any:
    calls = [
        {"id": ident, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        for ident in ids
    ]
    results = [
        {"role": "tool", "tool_call_id": ident, "content": f"sunny {i}"}
        for i, ident in enumerate(ids)
    ]
    ask = {"role": "user", "content": "Weather in Oslo?"}
    return [ask, {"role": "assistant", "content": None, "tool_calls": calls}, *results]


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_ids_of_another_provider_reach_claude_in_its_charset(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    answer = await sdk.chat.completions.create(
        model="sonnet", messages=conversation(IDS), stream=stream
    )
    if stream:
        assert [chunk async for chunk in answer]  # type: ignore[union-attr]
    record = fake.state.last()
    assert record is not None and record.status == 200
    assistant, results = record.body["messages"][1:]
    used = [block["id"] for block in assistant["content"]]
    answered = [block["tool_use_id"] for block in results["content"]]
    assert used == answered  # each result still answers its call
    assert len(set(used)) == len(IDS)  # two ids stay two, even where only `.`/`:` told them apart
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", ident) for ident in used)
    assert used[3] == IDS[3]  # an id Anthropic takes goes as it is
