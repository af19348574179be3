"""Gemini's thoughts ⇄ OpenAI's `reasoning_content`: asked for with the reasoning the caller
asked for (`includeThoughts`), mapped back from `thought: true` parts, unary and streamed."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _gemini_answer as GA
from router_service.providers import _gemini_map as G

HELLO = [{"role": "user", "content": "x"}]
THOUGHT: dict[str, Any] = {"text": "Let me see. ", "thought": True}


def _thinking(extra: dict[str, Any], model: str = "") -> Any:
    return G.request_body({"messages": HELLO, **extra}, model).get("generationConfig", {})


ON = {"includeThoughts": True}


@pytest.mark.parametrize(
    ("asked", "off", "model", "budgets"),
    [
        ({"reasoning_effort": "low"}, {"reasoning_effort": "none"}, "", (1024, 0)),
        # In the model's range; a model that cannot stop thinking (2.5 Pro) shows no thoughts
        # for `none` either.
        (
            {"reasoning_effort": "minimal"},
            {"reasoning_effort": "none"},
            "gemini-2.5-flash-lite",
            (512, 0),
        ),
        ({"reasoning_effort": "low"}, {"reasoning_effort": "none"}, "gemini-2.5-pro", (1024, 128)),
        ({"thinking": {"type": "adaptive"}}, {"thinking": {"type": "disabled"}}, "", (-1, 0)),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2000}},
            {"thinking": {"type": "enabled", "budget_tokens": 0}},
            "",
            (2000, 0),
        ),
    ],
    ids=["effort", "fitted", "pro", "adaptive", "budget"],
)
def test_reasoning_asked_for_asks_for_thoughts_and_reasoning_off_does_not(
    asked: dict[str, Any], off: dict[str, Any], model: str, budgets: tuple[int, int]
) -> None:
    on_budget, off_budget = budgets
    assert _thinking(asked, model) == {"thinkingConfig": {"thinkingBudget": on_budget, **ON}}
    assert _thinking(off, model) == {"thinkingConfig": {"thinkingBudget": off_budget}}
    # No knob is no thinkingConfig; the caller's own is sent as written.
    assert _thinking({}, model) == {}
    own = {"thinkingConfig": {"thinkingBudget": 300}}
    assert _thinking({**asked, "generationConfig": own}, model) == own


def _candidate(parts: list[dict[str, Any]], finish: str | None = "STOP") -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    return candidate | ({"finishReason": finish} if finish else {})


def test_thought_parts_are_the_messages_reasoning_content() -> None:
    parts: list[dict[str, Any]] = [
        THOUGHT,
        {"text": "Hmm.", "thought": True},
        {"text": "Four.", "thoughtSignature": "s"},
    ]
    message = GA.completion({"candidates": [_candidate(parts)]}, "m", 1)["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("Four.", "Let me see. Hmm.")
    # Thoughts alone are no answer when Gemini withholds it.
    with pytest.raises(UpstreamFailure) as caught:
        GA.completion({"candidates": [_candidate([THOUGHT], "SAFETY")]}, "m", 1)
    assert caught.value.outcome is Outcome.CONTENT_FILTERED


def test_thoughts_beside_a_call_and_no_thoughts_is_no_reasoning_content() -> None:
    call = {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}
    out = GA.completion({"candidates": [_candidate([THOUGHT, call])]}, "m", 1)
    message = out["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == (None, "Let me see. ")
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    plain = GA.completion({"candidates": [_candidate([{"text": "Hi"}])]}, "m", 1)
    assert "reasoning_content" not in plain["choices"][0]["message"]


def test_streamed_thoughts_are_reasoning_deltas_before_the_text() -> None:
    mapper = GA.StreamMapper("m", 1)
    events: list[dict[str, Any]] = [
        {"responseId": "r", "candidates": [_candidate([THOUGHT], None)]},
        {"candidates": [_candidate([{"text": "Hmm.", "thought": True}], None)]},
        {
            "candidates": [
                _candidate([{"text": "", "thought": True, "thoughtSignature": "s"}], None)
            ]
        },
        {"candidates": [_candidate([{"text": "Four", "thoughtSignature": "s"}], None)]},
        {"candidates": [_candidate([{"text": "."}])]},
    ]
    deltas = [c["choices"][0]["delta"] for event in events for c in mapper.feed(event)]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "Let me see. "},
        {"reasoning_content": "Hmm."},
        {"content": ""},  # a signature alone: nothing to say
        {"content": "Four"},
        {"content": "."},
    ]


@pytest.mark.parametrize(
    ("claude_effort", "effort"),
    [("low", "low"), ("medium", "medium"), ("high", "high"), ("max", "xhigh")],
)
def test_adaptive_thinkings_effort_is_that_efforts_gemini_budget(
    claude_effort: str, effort: str
) -> None:
    """Claude's adaptive thinking with `output_config.effort` means that effort: the budget a
    Gemini deployment gets for it is the one `reasoning_effort` gets (Google's, 8192 for
    medium), not the Claude column's (2048)."""
    adaptive = {"thinking": {"type": "adaptive"}, "output_config": {"effort": claude_effort}}
    assert _thinking(adaptive) == _thinking({"reasoning_effort": effort})
