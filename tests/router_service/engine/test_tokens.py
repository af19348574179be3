"""The pre-call token estimate counts an output bound set in Gemini's own words in the extras
(`generationConfig.maxOutputTokens`, `candidateCount`), as it counts OpenAI's."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.codec import estimate_prompt_tokens
from clients.switchboard.v1 import chat_pb2
from router_service.engine._tokens import (
    NativeBounds,
    estimate_chat_tokens,
    native_bounds,
)


def params(extra: Any = None, **typed: Any) -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(
        model="m",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="x" * 40)],
        extra_json="" if extra is None else orjson.dumps(extra).decode(),
        **typed,
    )


def output_of(request: chat_pb2.ChatParams) -> int:
    return estimate_chat_tokens(request) - estimate_prompt_tokens(request)


def test_without_a_bound_the_default_is_counted() -> None:
    assert output_of(params()) == 256
    assert output_of(params({"generationConfig": {"temperature": 0.1}})) == 256


def test_a_gemini_bound_in_the_extras_is_counted() -> None:
    assert output_of(params({"generationConfig": {"maxOutputTokens": 4000}})) == 4000
    assert output_of(params({"generationConfig": {"maxOutputTokens": 10}})) == 10
    # Each candidate is generated upstream, as each of `n` is.
    both = {"generationConfig": {"maxOutputTokens": 100, "candidateCount": 3}}
    assert output_of(params(both)) == 300


def test_with_both_the_larger_bound_counts() -> None:
    # Which deployment serves it is not known yet: Gemini takes the extras', others `max_tokens`.
    extra = {"generationConfig": {"maxOutputTokens": 4000}}
    assert output_of(params(extra, max_tokens=50)) == 4000
    assert output_of(params(extra, max_completion_tokens=5000)) == 5000
    assert output_of(params({"generationConfig": {"candidateCount": 2}}, n=3)) == 3 * 256


@pytest.mark.parametrize(
    "extra",
    [
        {"generationConfig": {"maxOutputTokens": "4000"}},
        {"generationConfig": {"maxOutputTokens": True}},
        {"generationConfig": {"maxOutputTokens": 1.5}},
        {"generationConfig": "fast"},
        {"other": {"generationConfig": {"maxOutputTokens": 9}}},
    ],
)
def test_what_is_no_whole_number_there_is_no_bound(extra: Any) -> None:
    assert native_bounds(params(extra)) == NativeBounds()
