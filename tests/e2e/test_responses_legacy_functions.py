"""A Responses caller's unknown top-level keys ride to the upstream as a chat caller's do, so
legacy `functions` reach the model (as the tools they stand for where the API has no such
fields: test_legacy_functions_as_tools) and its call comes back as a legacy `function_call`:
that call is the Response's `function_call` item, unary and streamed, not lost."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_legacy_functions_as_tools import FN, KINDS, router

__all__ = ["router"]  # the fixture, shared


@pytest.mark.parametrize("model", KINDS)
async def test_a_legacy_call_is_the_responses_function_call_item(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    reply = await sdk.responses.create(
        model=model, input="weather in Oslo?", extra_body={"functions": [FN]}
    )
    calls = [item for item in reply.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ], reply.output


@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_legacy_call_is_the_responses_function_call_item(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    stream = await sdk.responses.create(
        model=model, input="weather in Oslo?", stream=True, extra_body={"functions": [FN]}
    )
    done: Any = None
    async for event in stream:
        if event.type == "response.completed":
            done = event.response
    assert done is not None
    calls = [item for item in done.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Oslo"})
    ], done.output
