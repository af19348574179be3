"""Gemini's thoughts reach callers: a Gemini deployment asked for reasoning (the openai SDK's
`reasoning_effort`) answers `reasoning_content`, unary and streamed; the Gemini API entrance
(google-genai) shows an answer's reasoning as `thought: true` parts only when
`thinkingConfig.includeThoughts` is true, whichever kind of deployment reasoned."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from google import genai
from google.genai import types

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge, reasoning_read
from tests.e2e.test_gemini_sdk import config
from tests.helpers import eventually

REASONING, ANSWER = "Let me see it through.", "The answer."
HELLO: Any = [{"role": "user", "content": "hello"}]
# An OpenAI-kind deployment (its fake answers `reasoning_content`), a Gemini one (thought
# parts, when asked for), a Claude one (a thinking block).
KINDS = ("chain", "flash", "claude")


@pytest.fixture
def clock() -> ManualClock:
    """The router's: a stall window ends when a test moves it past, not on a loaded machine's
    slow chunk."""
    return ManualClock()


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter, clock: ManualClock) -> RouterHandle:
    out = config(fake)
    out["providers"]["ant"] = {"kind": "anthropic", "base_url": fake.base_url, "keys": ["k"]}
    out["models"]["claude"] = {"deployments": [{"provider": "ant", "model": "claude-x"}]}
    # A Gemini provider that calls half a second's silence a stall.
    out["providers"]["quick"] = {**out["providers"]["google"], "timeouts": {"stall_s": 0.5}}
    for name, provider in (("flash-then-chain", "google"), ("quick-then-chain", "quick")):
        out["models"][name] = {
            "deployments": [
                {"provider": provider, "model": "gemini-x"},
                {"provider": "alpha", "model": "model-a"},
            ]
        }
    return await start_router(out, clock=clock)


@pytest.fixture(autouse=True)
def reasoning(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(reasoning=REASONING, content=ANSWER))


# --- the openai SDK at a Gemini deployment --------------------------------------------------


async def test_an_effort_at_gemini_answers_its_thoughts_as_reasoning_content(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answer = await sdk.chat.completions.create(
        model="flash", messages=HELLO, reasoning_effort="low"
    )

    message = answer.choices[0].message
    assert (message.content, (message.model_extra or {}).get("reasoning_content")) == (
        ANSWER,
        REASONING,
    )
    sent = fake.state.last()
    assert sent is not None
    thinking = sent.body["generationConfig"]["thinkingConfig"]
    assert thinking == {"thinkingBudget": 1024, "includeThoughts": True}
    assert answer.usage is not None and answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == len(REASONING.split())
    for extra in ({}, {"reasoning_effort": "none"}):  # no reasoning asked: no thoughts
        plain = await sdk.chat.completions.create(model="flash", messages=HELLO, extra_body=extra)
        assert plain.choices[0].message.content == ANSWER
        assert "reasoning_content" not in (plain.choices[0].message.model_extra or {})


async def test_a_streamed_effort_at_gemini_streams_its_thoughts_before_the_text(
    sdk: openai.AsyncOpenAI,
) -> None:
    stream = await sdk.chat.completions.create(
        model="flash", messages=HELLO, reasoning_effort="medium", stream=True
    )
    kinds, thought, text = await reasoning_read(stream)

    assert (thought, text) == (REASONING, ANSWER)
    assert kinds.index("content") == kinds.count("reasoning") > 1  # each thought part, first


# --- the Gemini API entrance: includeThoughts -----------------------------------------------


def _settings(include: bool | None) -> types.GenerateContentConfig:
    thinking = types.ThinkingConfig(thinking_budget=8, include_thoughts=include)
    return types.GenerateContentConfig(thinking_config=thinking)


def _parts(response: types.GenerateContentResponse) -> list[tuple[bool, str]]:
    (candidate,) = response.candidates or []
    parts = candidate.content.parts if candidate.content is not None else None
    return [(bool(p.thought), p.text or "") for p in parts or []]


async def _streamed(gemini: genai.Client, model: str, include: bool | None) -> list[Any]:
    stream = await gemini.aio.models.generate_content_stream(
        model=model, contents="hi", config=_settings(include)
    )
    return [part for chunk in [c async for c in stream] for part in _parts(chunk)]


@pytest.mark.parametrize("model", KINDS)
async def test_include_thoughts_true_answers_thought_parts(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    response = await gemini.aio.models.generate_content(
        model=model, contents="hi", config=_settings(True)
    )

    assert _parts(response) == [(True, REASONING), (False, ANSWER)]
    streamed = await _streamed(gemini, model, True)
    thoughts = "".join(text for thought, text in streamed if thought)
    assert thoughts.split() == REASONING.split()
    assert "".join(text for thought, text in streamed if not thought) == ANSWER
    assert streamed[0][0] and not streamed[-1][0]  # the thoughts first
    sent = fake.state.last()
    assert sent is not None
    if model == "flash":  # back to Gemini: the `low` effort's budget, which holds 8
        thinking = {"thinkingBudget": 1024, "includeThoughts": True}
        assert sent.body["generationConfig"]["thinkingConfig"] == thinking
    elif model == "chain":
        assert sent.body["reasoning_effort"] == "low"
    await _no_thoughts_without_include_thoughts(gemini, model)


@pytest.mark.parametrize("model", KINDS)
async def test_include_thoughts_alone_reasons_at_the_deployments_default(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    """No budget, no level: a Gemini deployment is asked for its thoughts with no budget
    (dynamic), and they come back; the other kinds reason at their own default (OpenRouter's
    `enabled: true`: `medium` where efforts are taken)."""
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True)
    )
    response = await gemini.aio.models.generate_content(model=model, contents="hi", config=config)

    assert _parts(response) == [(True, REASONING), (False, ANSWER)]
    sent = fake.state.last()
    assert sent is not None
    assert "reasoning" not in sent.body
    if model == "flash":
        assert sent.body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    elif model == "claude":
        assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    else:
        assert sent.body["reasoning_effort"] == "medium"


async def _no_thoughts_without_include_thoughts(gemini: genai.Client, model: str) -> None:
    """The same reasoning, asked for with includeThoughts false or unset: no thought part."""
    for include in (False, None):
        response = await gemini.aio.models.generate_content(
            model=model, contents="hi", config=_settings(include)
        )
        assert _parts(response) == [(False, ANSWER)]
        streamed = await _streamed(gemini, model, include)
        assert not any(thought for thought, _ in streamed)
        assert "".join(text for _, text in streamed) == ANSWER
        if model == "flash":  # the thinking done is still counted
            assert response.usage_metadata is not None
            assert response.usage_metadata.thoughts_token_count == len(REASONING.split())


async def test_gemini_thoughts_are_screened_as_reasoning(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    rule = {"name": "pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]}
    fake.state.set_scenario(Scenario(reasoning="Write to jane@example.com now.", content=ANSWER))
    edge = await start_edge(await start_router(config(fake, guardrails=[rule])))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        answer = await sdk.chat.completions.create(
            model="flash", messages=HELLO, reasoning_effort="low"
        )
        stream = await sdk.chat.completions.create(
            model="flash", messages=HELLO, reasoning_effort="low", stream=True
        )
        _, streamed, _ = await reasoning_read(stream)

    redacted = "Write to [REDACTED:email] now."
    assert (answer.choices[0].message.model_extra or {})["reasoning_content"] == redacted
    assert streamed == redacted


FAULTS: dict[str, dict[str, Any]] = {
    "reset": {"reset_after_chunks": 2},
    "error": {"wrapped_error_at_chunk": 2},
    "stall": {"stall_after_chunks": 2},
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_stream_that_sent_only_unasked_thoughts_fails_over(
    gemini: genai.Client, fake: FakeUpstream, clock: ManualClock, fault: str
) -> None:
    """A Gemini deployment asked to think (a budget) sends its thoughts, which this caller did
    not ask to see (no includeThoughts), then fails (an error, a reset, a stall past its
    provider's `stall_s`): nothing reached the caller, so the next deployment answers, as if
    the first had failed before any chunk."""
    failing = Scenario(reasoning=REASONING, content=ANSWER, **FAULTS[fault])
    fake.state.set_scenario(failing, model="gemini-x")
    model = "quick-then-chain" if fault == "stall" else "flash-then-chain"

    streaming = asyncio.ensure_future(_streamed(gemini, model, None))
    if fault == "stall":
        await fake.state.wait_for(
            lambda: [c.outcome for c in fake.state.calls(model="gemini-x")] == ["stalled"]
        )

        async def timed() -> bool:  # the stall window is on the router's clock
            return any(w.when() == clock.monotonic() + 0.5 for w in clock.windows)

        await eventually(timed, what="a stall window of 0.5 s open on the clock")

        async def left() -> bool:  # its window moved past until the router leaves the call
            clock.advance(0.6)  # (it may open after the fake went quiet); alpha's is 30 s
            return fake.state.calls(model="gemini-x")[0].client_disconnected

        await eventually(left, what="the stall window ended the stalled call")
    streamed = await streaming

    assert streamed and not any(thought for thought, _ in streamed)
    assert "".join(text for _, text in streamed) == ANSWER
    [thought] = fake.state.calls(model="gemini-x")
    assert thought.body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    assert fake.state.calls(model="model-a")  # the fallback answered


async def test_a_stream_that_sent_only_excluded_reasoning_fails_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The same path for OpenRouter's `exclude`: the reasoning the caller hid is no start."""
    failing = Scenario(reasoning=REASONING, content=ANSWER, reset_after_chunks=2)
    fake.state.set_scenario(failing, model="gemini-x")
    stream = await sdk.chat.completions.create(
        model="flash-then-chain",
        messages=HELLO,
        reasoning_effort="low",
        stream=True,
        extra_body={"reasoning": {"exclude": True}},
    )
    kinds, thought, text = await reasoning_read(stream)

    assert (thought, text) == ("", ANSWER) and "reasoning" not in kinds
    assert fake.state.calls(model="gemini-x") and fake.state.calls(model="model-a")
