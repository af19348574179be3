"""Claude's signed thinking carried by a Responses caller (engine/_carried_thinking.py): a
Claude deployment gets it as the turn's `thinking_blocks`, others without it; an OpenAI
reasoning item beside it stays where it was."""

from __future__ import annotations

from typing import Any

import orjson

from clients import chat_params_from_openai
from clients.codec._responses_thinking import encode_thinking
from router_service.engine._carried_thinking import with_carried_thinking

SIGNED = {"type": "thinking", "thinking": "Hmm.", "signature": "sig"}
GIVEN = {"type": "redacted_thinking", "data": "caller's own"}
OPENAI_ITEM = {"id": "rs_o", "summary": [], "encrypted_content": "gAAAA"}


def _extra(claude: bool) -> dict[str, Any]:
    ours = {"id": "rs_c", "summary": [], "encrypted_content": encode_thinking([SIGNED])}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turn = {"role": "assistant", "content": None, "reasoning_items": [OPENAI_ITEM, ours],
            "thinking_blocks": [GIVEN], "tool_calls": [call]}  # fmt: skip
    params, _ = chat_params_from_openai({"model": "m", "messages": [turn]})
    sent = with_carried_thinking(params, claude)
    return dict(orjson.loads(sent.messages[0].extra_json))


def test_claude_gets_the_blocks_first_in_the_turn() -> None:
    extra = _extra(claude=True)

    assert extra["thinking_blocks"] == [SIGNED, GIVEN]
    assert extra["reasoning_items"] == [OPENAI_ITEM]


def test_another_deployment_gets_the_turn_without_them() -> None:
    extra = _extra(claude=False)

    assert extra["thinking_blocks"] == [GIVEN]
    assert extra["reasoning_items"] == [OPENAI_ITEM]


def test_params_without_any_are_passed_as_they_are() -> None:
    params, _ = chat_params_from_openai(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert with_carried_thinking(params, claude=True) is params
