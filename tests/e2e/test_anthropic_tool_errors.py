"""A failed tool result (`tool_result` with `is_error: true`) through the edge's `/v1/messages`:
Anthropic's SDK → the edge → the router → the fake upstream. Each deployment gets the failure
in its own words where its wire has them: Claude its `is_error` flag (the text as written),
Bedrock's Converse a toolResult's `status: "error"`, Gemini a functionResponse's `error` key;
an OpenAI-format server and Cohere, which have no word for it, the text said to be an error
(`Error: …`) and no Anthropic field a strict schema would refuse."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conformance.profiles import BY_KIND
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_sdk import config

TOOL: Any = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
SAID = "no such city"
NATIVE = ("gemini", "bedrock", "cohere")  # kinds of their own format, beside Claude's


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`sonnet`: Claude; `chain`: OpenAI-format servers; `gemini`; `bedrock` (Converse);
    `cohere`."""
    out = config(fake)
    for kind in NATIVE:
        out["providers"][f"{kind}-p"] = BY_KIND[kind].provider(fake, ["k-1"])
        deployment = {"provider": f"{kind}-p", "model": f"{kind}-up"}
        out["models"][kind] = {"deployments": [deployment]}
    return await start_router(out)


def _conversation(failed: bool) -> list[Any]:
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": SAID}
    return [
        {"role": "user", "content": "Weather in Atlantis?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [result | ({"is_error": True} if failed else {})]},
    ]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text", "")) for block in content)


def _seen(model: str, body: dict[str, Any]) -> tuple[Any, str]:
    """(how the deployment's body says the result failed, the result's text)."""
    if model == "sonnet":
        result = body["messages"][-1]["content"][0]
        return result.get("is_error"), _text(result["content"])
    if model in ("chain", "cohere"):
        result = body["messages"][-1]
        return result.get("is_error"), result["content"]
    if model == "gemini":
        response = body["contents"][-1]["parts"][0]["functionResponse"]["response"]
        return "error" in response, str(response.get("error", response.get("result")))
    result = body["messages"][-1]["content"][0]["toolResult"]
    return result.get("status"), _text(result["content"])


@pytest.mark.parametrize(
    ("model", "failed", "not_failed", "text"),
    [
        ("sonnet", True, None, SAID),
        ("chain", None, None, f"Error: {SAID}"),
        ("gemini", True, False, SAID),
        ("bedrock", "error", None, SAID),
        ("cohere", None, None, f"Error: {SAID}"),
    ],
)
async def test_a_failed_tool_result_is_one_in_each_deployments_words(
    claude: anthropic.AsyncAnthropic,
    fake: FakeUpstream,
    model: str,
    failed: Any,
    not_failed: Any,
    text: str,
) -> None:
    seen = []
    for is_error in (True, False):
        await claude.messages.create(
            model=model, max_tokens=32, tools=[TOOL], messages=_conversation(is_error)
        )
        record = fake.state.last(model=f"{model}-up" if model in NATIVE else None)
        assert record is not None and record.status == 200
        seen.append(_seen(model, record.body))
    assert seen == [(failed, text), (not_failed, SAID)]
