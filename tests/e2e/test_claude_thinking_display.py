"""Claude Opus 4.7 and later leave their thinking text out by default (`thinking.display:
"omitted"`, the block signature-only): a caller who asked for reasoning by an effort or
OpenRouter's object still gets it as `reasoning_content`, because the router asks for the
summary (`display: "summarized"`), on Anthropic's API, Vertex and Bedrock alike. Not when the
caller asked not to see it, nor where the model summarizes anyway; a caller's own `thinking`
is sent as written. The fake upstream omits the text as those models do."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_reasoning_sdk import HELLO, claude_three_ways, received

THOUGHT = "Two and two make four."
SUMMARIZED = {"type": "adaptive", "display": "summarized"}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(
        claude_three_ways(
            fake,
            {
                "opus-4-7": ("claude", "claude-opus-4-7"),
                "vx-opus-4-7": ("vx", "claude-opus-4-7"),
                "br-opus-4-7": ("br", "us.anthropic.claude-opus-4-7-v1:0"),
                "sonnet-4-6": ("claude", "claude-sonnet-4-6"),
            },
        )
    )


@pytest.mark.parametrize("model", ["opus-4-7", "vx-opus-4-7"])
async def test_an_effort_gets_the_thinking_of_a_model_that_omits_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(reasoning=THOUGHT))
    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort="high", max_tokens=300
    )

    assert (answer.choices[0].message.model_extra or {}).get("reasoning_content") == THOUGHT
    assert received(fake)["thinking"] == SUMMARIZED

    stream = await sdk.chat.completions.create(
        model=model, messages=HELLO, reasoning_effort="high", max_tokens=300, stream=True
    )
    deltas = [c.choices[0].delta async for c in stream if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == THOUGHT


async def test_bedrock_asks_claude_for_its_summary(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="br-opus-4-7", messages=HELLO, reasoning_effort="high", max_tokens=300
    )

    assert received(fake)["additionalModelRequestFields"]["thinking"] == SUMMARIZED


@pytest.mark.parametrize(
    ("model", "extra", "thinking"),
    [
        # The caller hides the reasoning: no summary to wait for.
        ("opus-4-7", {"reasoning": {"effort": "high", "exclude": True}}, {"type": "adaptive"}),
        # `none` asks for no reasoning (Opus 4.7 refuses `disabled`: its least effort).
        ("opus-4-7", {"reasoning_effort": "none"}, {"type": "adaptive"}),
        # Claude 4.6 summarizes by default.
        ("sonnet-4-6", {"reasoning_effort": "high"}, {"type": "adaptive"}),
        # A caller's own `thinking` is Anthropic's, as written: the model's default stands.
        ("opus-4-7", {"thinking": {"type": "adaptive"}}, {"type": "adaptive"}),
    ],
)
async def test_no_summary_is_asked_for_where_it_is_not_to_be_shown(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, extra: Any, thinking: Any
) -> None:
    await sdk.chat.completions.create(model=model, messages=HELLO, max_tokens=300, extra_body=extra)

    assert received(fake)["thinking"] == thinking
