"""A Responses upstream's unary answer interleaving reasoning items with its message and calls
(`[rs1, msg, rs2, call]`, as a reasoning model's tool-calling turn comes): the caller's
Response keeps that order (OpenAI wants each reasoning item back before the item it preceded),
and so does the assistant turn sent back to a Responses upstream; where an item stood is no
field of either."""

from __future__ import annotations

from typing import Any

from clients import ResponseIds, responses_request_from_openai
from clients.codec import chat_completion_from_openai
from clients.codec._responses_output import response_to_openai
from router_service.providers._responses_answer import completion_from_response
from router_service.providers._responses_map import input_items


def reasoning(item_id: str, text: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}]
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": summary,
        "encrypted_content": "gA-" + text,
    }


OUTPUT: list[dict[str, Any]] = [
    reasoning("rs_1", "Reading."),
    {"type": "message", "id": "msg_1", "role": "assistant",
     "content": [{"type": "output_text", "text": "Patching now."}]},
    reasoning("rs_2", "Patching."),
    {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "name": "apply_patch",
     "input": "*** Begin Patch"},
]  # fmt: skip
UPSTREAM = {"id": "resp_u", "created_at": 1, "model": "m", "status": "completed", "output": OUTPUT}


def test_the_caller_gets_the_upstream_s_order_and_sends_it_back_so() -> None:
    answer = completion_from_response(UPSTREAM)
    body = {"model": "codex", "input": "hi", "include": ["reasoning.encrypted_content"]}
    request = responses_request_from_openai(body)

    got = response_to_openai(
        chat_completion_from_openai(answer), request, ResponseIds("resp_e"), 1, 2
    )

    shown = [(item["type"], item.get("id")) for item in got["output"]]
    assert shown == [
        ("reasoning", "rs_1"), ("message", "msg_e"),
        ("reasoning", "rs_2"), ("custom_tool_call", "ctc_e"),
    ]  # fmt: skip
    assert all(set(item) <= {"id", "type", "status", "summary", "encrypted_content"}
               for item in got["output"] if item["type"] == "reasoning")  # fmt: skip
    sent = input_items([answer["choices"][0]["message"]])
    assert [item["type"] for item in sent] == [item["type"] for item in OUTPUT]
    assert [item for item in sent if item["type"] == "reasoning"] == [OUTPUT[0], OUTPUT[2]]
