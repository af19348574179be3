"""Gemini's thoughts ⇄ OpenAI's `reasoning_content`: asked for with the reasoning the caller
asked for (`includeThoughts`), mapped back from `thought: true` parts, unary and streamed."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _gemini_map as G

HELLO = [{"role": "user", "content": "x"}]
THOUGHT: dict[str, Any] = {"text": "Let me see. ", "thought": True}


def _thinking(extra: dict[str, Any], model: str = "") -> Any:
    return G.request_body({"messages": HELLO, **extra}, model).get("generationConfig", {})


@pytest.mark.parametrize(
    ("extra", "model", "config"),
    [
        ({"reasoning_effort": "low"}, "", {"thinkingBudget": 1024, "includeThoughts": True}),
        (
            {"reasoning_effort": "minimal"},
            "gemini-2.5-flash-lite",
            {"thinkingBudget": 512, "includeThoughts": True},
        ),
        (
            {"thinking": {"type": "adaptive"}},
            "",
            {"thinkingBudget": -1, "includeThoughts": True},
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2000}},
            "",
            {"thinkingBudget": 2000, "includeThoughts": True},
        ),
        # Reasoning off is no thoughts, even where the model cannot stop thinking (2.5 Pro).
        ({"reasoning_effort": "none"}, "", {"thinkingBudget": 0}),
        ({"reasoning_effort": "none"}, "gemini-2.5-pro", {"thinkingBudget": 128}),
        ({"thinking": {"type": "disabled"}}, "", {"thinkingBudget": 0}),
    ],
    ids=["effort", "fitted", "adaptive", "budget", "none", "pro_none", "disabled"],
)
def test_reasoning_asked_for_asks_for_thoughts(
    extra: dict[str, Any], model: str, config: dict[str, Any]
) -> None:
    assert _thinking(extra, model) == {"thinkingConfig": config}


def test_no_reasoning_asked_is_no_thinking_config_and_the_callers_own_is_sent_as_written() -> None:
    assert _thinking({}) == {}
    own = {"thinkingConfig": {"thinkingBudget": 300}}
    assert _thinking({"reasoning_effort": "high", "generationConfig": own}) == own


def _candidate(parts: list[dict[str, Any]], finish: str | None = "STOP") -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    return candidate | ({"finishReason": finish} if finish else {})


def test_thought_parts_are_the_messages_reasoning_content() -> None:
    parts: list[dict[str, Any]] = [
        THOUGHT,
        {"text": "Hmm.", "thought": True},
        {"text": "Four.", "thoughtSignature": "s"},
    ]
    message = G.completion({"candidates": [_candidate(parts)]}, "m", 1)["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("Four.", "Let me see. Hmm.")


def test_thoughts_beside_a_call_and_no_thoughts_is_no_reasoning_content() -> None:
    call = {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}
    out = G.completion({"candidates": [_candidate([THOUGHT, call])]}, "m", 1)
    message = out["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == (None, "Let me see. ")
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    plain = G.completion({"candidates": [_candidate([{"text": "Hi"}])]}, "m", 1)
    assert "reasoning_content" not in plain["choices"][0]["message"]


def test_thoughts_alone_are_no_answer_when_gemini_withholds_it() -> None:
    with pytest.raises(UpstreamFailure) as caught:
        G.completion({"candidates": [_candidate([THOUGHT], "SAFETY")]}, "m", 1)
    assert caught.value.outcome is Outcome.CONTENT_FILTERED


def test_streamed_thoughts_are_reasoning_deltas_before_the_text() -> None:
    mapper = G.StreamMapper("m", 1)
    events: list[dict[str, Any]] = [
        {"responseId": "r", "candidates": [_candidate([THOUGHT], None)]},
        {"candidates": [_candidate([{"text": "Hmm.", "thought": True}], None)]},
        {"candidates": [_candidate([{"text": "Four", "thoughtSignature": "s"}], None)]},
        {"candidates": [_candidate([{"text": "."}])]},
    ]
    deltas = [c["choices"][0]["delta"] for event in events for c in mapper.feed(event)]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "Let me see. "},
        {"reasoning_content": "Hmm."},
        {"content": "Four"},
        {"content": "."},
    ]
