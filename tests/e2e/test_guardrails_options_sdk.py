"""Guardrails on a request's options and names and on an answer's reasoning, as an OpenAI SDK
user sees them through the edge: `metadata`, `stop` and `user` reach the upstream redacted
(chat and legacy completions); a name a redact rule finds something in (a tool's, on chat and
the Responses API) blocks the call, as a rewritten name would break it; the reasoning of an
answer is redacted, streamed (chat and the Responses API: released before the answer) and
unary (the Responses API's reasoning item); a stream's headers name the answer-side rules
before its first chunk. The fake upstream answers `Scenario.reasoning` as `reasoning_content`."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.conftest import Guarded
from tests.e2e.stream_harness import reasoning_read

pytestmark = pytest.mark.timeout(60)

EMAIL = "jane@example.com"
GUARDRAILS = [
    {"name": "pii", "detect": ["email"], "action": "redact"},
    {"name": "codename", "patterns": ["(?i)falcon"], "action": "redact"},
    {"name": "answer-pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]},
]
PROSE = "Let me think about what the caller wants here, step by step. "
HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def sdk(guarded_sdk: Guarded) -> openai.AsyncOpenAI:
    _, sdk = await guarded_sdk(GUARDRAILS)
    return sdk


async def test_metadata_stop_and_user_reach_the_upstream_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain",
        messages=HI,
        metadata={"ticket": f"from {EMAIL}"},
        stop=[f"bye {EMAIL}"],
        user=EMAIL,
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    await sdk.completions.create(model="chain", prompt="hi", stop=EMAIL, user=EMAIL)
    chat, legacy = (call.body for call in fake.state.calls())
    assert chat["metadata"] == {"ticket": "from [REDACTED:email]"}
    assert chat["stop"] == ["bye [REDACTED:email]"]
    assert chat["user"] == legacy["user"] == legacy["stop"] == "[REDACTED:email]"


async def test_a_name_a_redact_rule_finds_something_in_blocks_the_call(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    function: Any = {"name": "falcon_lookup", "parameters": {"type": "object"}}
    responses_tool: Any = {"type": "function", "strict": False, **function}
    with pytest.raises(openai.BadRequestError) as chat:
        await sdk.chat.completions.create(
            model="chain", messages=HI, tools=[{"type": "function", "function": function}]
        )
    with pytest.raises(openai.BadRequestError) as responses:
        await sdk.responses.create(
            model="chain",
            input="hi",
            tools=[responses_tool],
            tool_choice={"type": "function", "name": "falcon_lookup"},
        )
    for caught in (chat, responses):
        assert caught.value.code == "content_policy_violation"
        assert caught.value.param == "tools[0].function.name"
        assert "'codename'" in caught.value.message
    assert fake.state.calls() == []


async def test_streamed_reasoning_is_redacted_and_the_headers_name_the_answer_rules(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    reasoning = PROSE * 2 + f"I could write to {EMAIL} about it. " + PROSE * 2
    fake.state.set_scenario(Scenario(reasoning=reasoning, content="The answer."))
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=HI, stream=True
    )
    assert raw.headers["x-switchboard-answer-guardrails"] == "answer-pii"
    kinds, thought, _ = await reasoning_read(raw.parse())
    assert thought == reasoning.replace(EMAIL, "[REDACTED:email]")
    assert kinds[-1] == "content" and kinds.count("content") == 1  # reasoning came first


async def test_a_responses_answers_reasoning_item_is_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(reasoning=f"ask {EMAIL}", content="The answer."))
    raw = await sdk.responses.with_raw_response.create(model="chain", input="hi")
    assert raw.headers["x-switchboard-guardrails"] == "answer-pii"
    assert raw.headers["x-switchboard-answer-guardrails"] == "answer-pii"
    reasoning, message = raw.parse().output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert [part.text for part in reasoning.content or []] == ["ask [REDACTED:email]"]
    assert EMAIL not in raw.http_response.text


async def test_a_responses_streams_reasoning_is_redacted_before_its_message(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    reasoning = PROSE * 2 + f"I could write to {EMAIL} about it. " + PROSE * 2
    fake.state.set_scenario(Scenario(reasoning=reasoning, content="The answer."))
    thought, kinds = "", []
    async with sdk.responses.stream(model="chain", input="hi") as stream:
        async for event in stream:
            if event.type == "response.reasoning_text.delta":
                thought += event.delta
            elif event.type == "response.output_item.added":
                kinds.append(event.item.type)
        final = await stream.get_final_response()
    assert thought == reasoning.replace(EMAIL, "[REDACTED:email]")
    assert kinds == ["reasoning", "message"]  # one reasoning item, before the answer
    assert [item.type for item in final.output] == ["reasoning", "message"]
