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

OSLO = Scenario(tool_call=True, tool_arguments={"city": "Oslo"})


def _function_calls(output: list[Any]) -> list[tuple[str, Any]]:
    """A Response's `function_call` items: their names and parsed arguments."""
    return [
        (item.name, json.loads(item.arguments)) for item in output if item.type == "function_call"
    ]


@pytest.mark.parametrize("model", KINDS)
async def test_a_legacy_call_is_the_responses_function_call_item(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(OSLO)
    reply = await sdk.responses.create(
        model=model, input="weather in Oslo?", extra_body={"functions": [FN]}
    )
    assert _function_calls(reply.output) == [("get_weather", {"city": "Oslo"})], reply.output


@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_legacy_call_is_the_responses_function_call_item(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(OSLO)
    stream = await sdk.responses.create(
        model=model, input="weather in Oslo?", stream=True, extra_body={"functions": [FN]}
    )
    done: Any = None
    async for event in stream:
        if event.type == "response.completed":
            done = event.response
    assert done is not None
    assert _function_calls(done.output) == [("get_weather", {"city": "Oslo"})], done.output
