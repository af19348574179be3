"""Mistral's models take tool call ids of exactly 9 letters and digits: a conversation begun on
another provider (OpenAI's `call_…`, Claude's `toolu_…` ids) goes on at an OpenAI-format
deployment of a Mistral model with its ids mapped (each call and its result one id, two calls
two ids, an id Mistral gave as it is), through the real router over gRPC."""

from __future__ import annotations

import re
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conformance.helpers import WEATHER_TOOL, chat, params, stream, streamed_text
from tests.conftest import HANG_GUARD, StartRouter

QUESTION = {"role": "user", "content": "what is the weather"}
OPENAI_ID, CLAUDE_ID, MISTRAL_ID = (
    "call_Xy12abCD34efGH56",
    "toolu_01A09q90qw90lq917835lq9",
    "aB3xK9mP2",
)


def _assistant(*ids: str) -> dict[str, Any]:
    calls = [
        {
            "id": call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        for call_id in ids
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def _result(call_id: str, said: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": said}


HISTORY = [
    QUESTION,
    _assistant(OPENAI_ID, CLAUDE_ID),
    _result(OPENAI_ID, "22 degrees"),
    _result(CLAUDE_ID, "sunny"),
    _assistant(MISTRAL_ID),
    _result(MISTRAL_ID, "still 22"),
]


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", ["mistral-small-latest", "mistralai/Mistral-7B-Instruct-v0.3"])
async def test_another_providers_tool_call_ids_reach_a_mistral_model_as_it_takes_them(
    fake: FakeUpstream, start_router: StartRouter, model: str, streaming: bool
) -> None:
    provider = {"base_url": fake.base_url, "keys": ["k"], "timeouts": dict(HANG_GUARD)}
    config = {
        "providers": {"mistral": provider},
        "models": {"solo": {"deployments": [{"provider": "mistral", "model": model}]}},
        "server": {"port": 0},
    }
    router = await start_router(config)
    asked = params(messages=HISTORY, tools=[WEATHER_TOOL])
    if streaming:
        answer = streamed_text(await stream(router, asked))
    else:
        answer = (await chat(router, asked)).completion.choices[0].message.text
    assert answer == "Echo: what is the weather"

    record = fake.state.last(model=model)
    assert record is not None
    messages = record.body["messages"]
    calls = [c["id"] for m in messages for c in m.get("tool_calls") or ()]
    results = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", i) for i in calls)
    assert results == calls and len(set(calls)) == 3  # each result its call's, three calls
    assert calls[2] == MISTRAL_ID  # Mistral's own, as it gave it
    assert [m.get("content") for m in messages if m["role"] == "tool"] == [
        "22 degrees",
        "sunny",
        "still 22",
    ]


async def test_a_model_of_another_family_gets_the_ids_as_they_came(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    provider = {"base_url": fake.base_url, "keys": ["k"], "timeouts": dict(HANG_GUARD)}
    config = {
        "providers": {"up": provider},
        "models": {"solo": {"deployments": [{"provider": "up", "model": "gpt-4.1"}]}},
        "server": {"port": 0},
    }
    router = await start_router(config)
    await chat(router, params(messages=HISTORY, tools=[WEATHER_TOOL]))
    record = fake.state.last(model="gpt-4.1")
    assert record is not None
    calls = [c["id"] for m in record.body["messages"] for c in m.get("tool_calls") or ()]
    assert calls == [OPENAI_ID, CLAUDE_ID, MISTRAL_ID]
