"""Mistral's models take tool call ids of exactly 9 letters and digits: a conversation begun on
another provider (OpenAI's `call_…`, Claude's `toolu_…` ids) goes on at an OpenAI-format
deployment of a Mistral model with its ids mapped (each call and its result one id, two calls
two ids, an id Mistral gave as it is), through the real router over gRPC."""

from __future__ import annotations

import re
from typing import Any

import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.providers._mistral_ids import mistral_tool_id
from tests.conformance.helpers import WEATHER_TOOL, chat, params, stream, streamed_text
from tests.conformance.profiles import BY_KIND
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


async def test_a_mistral_model_known_by_its_base_model_gets_them_mapped_too(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A deployment named otherwise (an Azure deployment's name, a vLLM served model name) says
    which model it serves in `base_model`, which whatever is read from a model's name reads."""
    provider = {"base_url": fake.base_url, "keys": ["k"], "timeouts": dict(HANG_GUARD)}
    deployment = {"provider": "up", "model": "prod-chat", "base_model": "mistral-large-2411"}
    config = {
        "providers": {"up": provider},
        "models": {"solo": {"deployments": [deployment]}},
        "server": {"port": 0},
    }
    router = await start_router(config)
    await chat(router, params(messages=HISTORY, tools=[WEATHER_TOOL]))
    record = fake.state.last(model="prod-chat")
    assert record is not None
    calls = [c["id"] for m in record.body["messages"] for c in m.get("tool_calls") or ()]
    assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", i) for i in calls) and calls[2] == MISTRAL_ID


async def test_a_mistral_model_on_bedrock_gets_them_as_mistral_takes_them(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Bedrock's Converse hands a Mistral model the ids it is given, and the model refuses any
    but 9 letters and digits ("Tool call id was a but must be a-z, A-Z, 0-9, with a length of
    9."): another entrance's short ids (the Gemini API's calls have none: `call_1_0`) too."""
    model = "us.mistral.pixtral-large-2502-v1:0"
    config = {
        "providers": {"aws": BY_KIND["bedrock"].provider(fake, ["k-1"])},
        "models": {"solo": {"deployments": [{"provider": "aws", "model": model}]}},
        "server": {"port": 0},
    }
    router = await start_router(config)
    short = [QUESTION, _assistant("call_1_0"), _result("call_1_0", "22 degrees")]
    mapped = []
    for history in (short, HISTORY):  # the fake refuses a short one, as Bedrock's Mistral does
        await chat(router, params(messages=history, tools=[WEATHER_TOOL]))
        record = fake.state.last(model=model)
        assert record is not None and record.status == 200
        blocks = [b for m in record.body["messages"] for b in m["content"]]
        calls = [b["toolUse"]["toolUseId"] for b in blocks if "toolUse" in b]
        results = [b["toolResult"]["toolUseId"] for b in blocks if "toolResult" in b]
        assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", i) for i in calls)
        assert results == calls and len(set(calls)) == len(calls)
        mapped.append(calls)
    assert mapped[0] == [mistral_tool_id("call_1_0")] and mapped[1][2] == MISTRAL_ID
