"""A failed function call's result through the edge's Gemini API: Google's SDK sends a
functionResponse whose `response` has Gemini's `error` key (as its automatic function calling
does for a function that raised) → the edge → the router → the fake upstream. Each deployment
gets the failure in its own words, as a Messages API caller's `is_error` reaches it: Claude
its `is_error` flag, an OpenAI-format server the text said to be an error (`Error: …`), a
Gemini deployment the same `response` (not one `error` inside another)."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_gemini_sdk import config

FAILED = {"error": "no such city"}
ANSWERED = {"sky": "grey"}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`chain`: OpenAI-format servers; `flash`: Gemini; `sonnet`: Claude."""
    out = config(fake)
    out["providers"]["claude"] = {"kind": "anthropic", "base_url": fake.base_url, "keys": ["a"]}
    out["models"]["sonnet"] = {"deployments": [{"provider": "claude", "model": "claude-x"}]}
    return await start_router(out)


def _turns(response: dict[str, Any]) -> list[types.Content]:
    call = types.FunctionCall(name="get_weather", args={"city": "Atlantis"})
    result = types.Part.from_function_response(name="get_weather", response=response)
    return [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Atlantis?")]),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(role="user", parts=[result]),
    ]


def _seen(model: str, body: dict[str, Any]) -> Any:
    """How the deployment's body carries the result: (its failure flag, its text or JSON)."""
    if model == "flash":
        return body["contents"][-1]["parts"][0]["functionResponse"]["response"]
    if model == "sonnet":
        result = body["messages"][-1]["content"][0]
        content = result["content"]
        text = content if isinstance(content, str) else "".join(b["text"] for b in content)
        return result.get("is_error"), text
    result = body["messages"][-1]
    return result.get("is_error"), result["content"]


@pytest.mark.parametrize(
    ("model", "failed", "answered"),
    [
        ("flash", FAILED, ANSWERED),
        ("sonnet", (True, '{"error":"no such city"}'), (None, '{"sky":"grey"}')),
        ("chain", (None, 'Error: {"error":"no such city"}'), (None, '{"sky":"grey"}')),
    ],
)
async def test_a_function_responses_error_is_a_failed_result_at_each_deployment(
    gemini: genai.Client, fake: FakeUpstream, model: str, failed: Any, answered: Any
) -> None:
    seen = []
    for response in (FAILED, ANSWERED):
        await gemini.aio.models.generate_content(model=model, contents=_turns(response))
        record = fake.state.last()
        assert record is not None and record.status == 200
        seen.append(_seen(model, record.body))
    assert seen == [failed, answered]
