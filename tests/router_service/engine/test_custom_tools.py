"""Custom tools emulated as function tools (engine/_custom_tools.py, _custom_stream.py): the
params an upstream without custom tools gets, and its answer's calls made custom again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from clients import chat_params_from_openai, chat_params_to_openai, chunk_from_openai
from clients.codec._response import chunk_to_openai
from clients.switchboard.v1 import chat_pb2
from router_service.engine._custom_stream import decode_input
from router_service.engine._custom_tools import emulated
from router_service.engine._sent import Restoring

TEXT = 'line "one"\n\ttab \\ back é 😀 end'
PATCH_TOOL: Any = {
    "type": "custom",
    "custom": {
        "name": "apply_patch",
        "description": "Edits files.",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: X"}},
    },
}


def test_the_input_is_decoded_whatever_the_deltas_cut() -> None:
    arguments = json.dumps({"input": TEXT})  # non-ASCII as \u escapes, a surrogate pair too
    for cut in range(len(arguments) + 1):
        pieces, pos = [], 0
        for end in (cut, len(arguments)):
            piece, pos = decode_input(arguments[:end], pos) if pos >= 0 else ("", pos)
            pieces.append(piece)
        assert "".join(pieces) == TEXT, cut
        assert pos == -1


def test_custom_tools_calls_and_choice_are_sent_as_a_function() -> None:
    params, _ = chat_params_from_openai(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "patch"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "custom", "custom": {"name": "apply_patch",
                                                              "input": TEXT}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            ],
            "tools": [PATCH_TOOL],
            "tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}},
        }
    )  # fmt: skip
    sent, names = emulated(params)

    body = chat_params_to_openai(sent)
    assert names == {"apply_patch"}
    function = body["tools"][0]["function"]
    assert body["tools"][0]["type"] == "function" and function["name"] == "apply_patch"
    assert function["parameters"]["properties"]["input"]["type"] == "string"
    assert "Edits files." in function["description"] and "start: X" in function["description"]
    call = body["messages"][1]["tool_calls"][0]
    assert call == {
        "id": "c1",
        "type": "function",
        "function": {"name": "apply_patch", "arguments": orjson.dumps({"input": TEXT}).decode()},
    }
    assert body["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    assert chat_params_to_openai(params)["tools"] == [PATCH_TOOL]  # the caller's left as sent


async def _chunks(deltas: list[dict[str, Any]]) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
    for n, delta in enumerate(deltas):
        finish = "tool_calls" if n == len(deltas) - 1 else None
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        yield chunk_from_openai({"id": "x", "object": "chat.completion.chunk", "created": 1,
                                 "model": "m", "choices": [choice]})  # fmt: skip


async def restored(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool call deltas of a restored stream, in the caller's JSON."""
    stream = Restoring(custom=frozenset({"apply_patch"})).chunks(_chunks(deltas))
    return [
        call
        async for chunk in stream
        for call in chunk_to_openai(chunk)["choices"][0]["delta"].get("tool_calls") or []
    ]


async def test_a_streamed_call_is_a_custom_call_as_it_comes() -> None:
    start = {"index": 0, "id": "c1", "type": "function",
             "function": {"name": "apply_patch", "arguments": ""}}  # fmt: skip
    arguments = json.dumps({"input": TEXT})
    deltas = [{"tool_calls": [start]}] + [
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 7]}}]}
        for i in range(0, len(arguments), 7)
    ]
    calls = await restored([*deltas, {}])

    assert calls[0] == {"index": 0, "id": "c1", "type": "custom",
                        "custom": {"name": "apply_patch", "input": ""}}  # fmt: skip
    assert "".join(c["custom"].get("input", "") for c in calls) == TEXT
    assert all("function" not in c for c in calls)


async def test_arguments_not_written_as_asked_come_whole_at_the_finish() -> None:
    start = {"index": 0, "id": "c1", "type": "function",
             "function": {"name": "apply_patch", "arguments": '{"patch": "x"}'}}  # fmt: skip
    other = {"index": 1, "id": "c2", "type": "function",
             "function": {"name": "shell", "arguments": "{}"}}  # fmt: skip
    calls = await restored([{"tool_calls": [start, other]}, {}])

    assert calls[1] == other  # a function tool's call is left as it is
    assert "".join(c["custom"]["input"] for c in calls if "custom" in c) == '{"patch": "x"}'
