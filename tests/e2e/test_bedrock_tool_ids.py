"""A conversation's tool call ids reach Bedrock as Converse takes them (a toolUse's and a
toolResult's `toolUseId`: `[a-zA-Z0-9_-]`, 1 to 64), whichever provider made them: Kimi's
`functions.get_weather:0` (a failover, a model switched mid-session) was sent as it was, and
Bedrock refused the whole request with a ValidationException (a 400)."""

from __future__ import annotations

import re

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conformance.helpers import WEATHER_TOOL
from tests.e2e.test_anthropic_tool_ids import IDS, conversation
from tests.e2e.test_bedrock_sdk import router  # noqa: F401

LONG = "call_" + "x" * 64  # in the charset, but longer than Converse takes


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_ids_of_another_provider_reach_bedrock_in_its_charset(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    ids = [*IDS, LONG, LONG + "y"]
    answer = await sdk.chat.completions.create(
        model="iam-chat", messages=conversation(ids), tools=[WEATHER_TOOL], stream=stream
    )
    if stream:
        assert [chunk async for chunk in answer]  # type: ignore[union-attr]
    record = fake.state.last()
    assert record is not None and record.status == 200
    assistant, results = record.body["messages"][1:]
    used = [block["toolUse"]["toolUseId"] for block in assistant["content"]]
    answered = [block["toolResult"]["toolUseId"] for block in results["content"]]
    assert used == answered  # each result still answers its call
    assert len(set(used)) == len(ids)  # two ids stay two
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", ident) for ident in used)
    assert used[3] == IDS[3]  # an id Converse takes goes as it is
