"""OpenAI's hosted tools' items through the chat representation: a Responses upstream's answer
interleaving reasoning, a web search call, cited text, an MCP call and a function call comes
to the caller in that order, each hosted item whole and the citation on its text; the same turn
handed back (as the caller's input items, or as the assistant message) reaches the upstream in
that order again. Streamed, the hosted items' events ride through whole."""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response

from clients import ResponseIds, chat_params_to_openai, responses_request_from_openai
from clients.codec import chat_completion_from_openai
from clients.codec._responses_output import response_to_openai
from router_service.providers._responses_answer import completion_from_response
from router_service.providers._responses_map import input_items
from router_service.providers._responses_stream import ResponsesStream


def reasoning(item_id: str) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": item_id}]
    return {"type": "reasoning", "id": item_id, "summary": summary, "encrypted_content": "gA-1"}


SEARCH: Any = {
    "type": "web_search_call",
    "id": "ws_1",
    "status": "completed",
    "action": {"type": "search", "query": "paris weather"},
}
CITE: Any = {"type": "url_citation", "start_index": 6, "end_index": 11, "url": "https://x.y",
             "title": "X"}  # fmt: skip
MESSAGE: Any = {
    "type": "message",
    "id": "msg_1",
    "role": "assistant",
    "status": "completed",
    "content": [
        {"type": "output_text", "text": "Hello ", "annotations": []},
        {"type": "output_text", "text": "Sunny", "annotations": [{**CITE, "start_index": 0,
                                                                  "end_index": 5}]},
    ],
}  # fmt: skip
MCP: Any = {"type": "mcp_call", "id": "mcp_1", "server_label": "dice", "name": "roll",
            "arguments": "{}", "output": "4", "status": "completed"}  # fmt: skip
CALL: Any = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
             "arguments": "{}"}  # fmt: skip
OUTPUT = [reasoning("rs_1"), SEARCH, reasoning("rs_2"), MESSAGE, MCP, CALL]
UPSTREAM = {"id": "resp_u", "created_at": 1, "model": "m", "status": "completed", "output": OUTPUT}


def test_the_caller_gets_them_in_place_and_sends_them_back_so() -> None:
    answer = completion_from_response(UPSTREAM)
    message = answer["choices"][0]["message"]
    assert message["annotations"] == [{"type": "url_citation", "url_citation": {
        "start_index": 6, "end_index": 11, "url": "https://x.y", "title": "X"}}]  # fmt: skip
    body = {"model": "m", "input": "hi", "include": ["reasoning.encrypted_content"]}

    got = response_to_openai(
        chat_completion_from_openai(answer), responses_request_from_openai(body),
        ResponseIds("resp_e"), 1, 2,
    )  # fmt: skip

    Response.model_validate(got)
    assert [item["type"] for item in got["output"]] == [item["type"] for item in OUTPUT]
    assert got["output"][1] == SEARCH and got["output"][4] == MCP
    assert got["output"][3]["content"][0]["annotations"] == [CITE]
    sent = input_items([message])
    assert [item["type"] for item in sent] == [item["type"] for item in OUTPUT]
    assert sent[1] == SEARCH and sent[4] == MCP


def test_the_caller_s_items_reach_the_upstream_in_their_order() -> None:
    shell = {"type": "local_shell_call", "id": "lsh_1", "call_id": "c1", "status": "completed",
             "action": {"type": "exec", "command": ["ls"], "env": {}}}  # fmt: skip
    ran = {"type": "local_shell_call_output", "id": "c1", "output": '{"stdout": "a"}'}
    said = {"type": "message", "role": "assistant", "content": "Done."}
    approval = {"type": "mcp_approval_response", "approval_request_id": "mcpr_1",
                "approve": True}  # fmt: skip
    user = {"type": "message", "role": "user", "content": "go"}
    given = [user, reasoning("rs_1"), SEARCH, reasoning("rs_2"), said, shell, ran, approval, user]
    params = responses_request_from_openai({"model": "m", "input": given}).params

    sent = input_items(chat_params_to_openai(params)["messages"])

    assert [item["type"] for item in sent] == [item.get("type", "message") for item in given]
    assert sent[2] == SEARCH and sent[5:8] == [shell, ran, approval]


def test_a_stream_s_hosted_events_ride_whole() -> None:
    stream = ResponsesStream("m", 1)
    opened = {"type": "response.output_item.added", "output_index": 0, "sequence_number": 3,
              "item": {**SEARCH, "status": "in_progress"}}  # fmt: skip
    searching = {"type": "response.web_search_call.searching", "output_index": 0,
                 "item_id": "ws_1", "sequence_number": 4}  # fmt: skip
    cited = {"type": "response.output_text.annotation.added", "item_id": "msg_1",
             "output_index": 1, "content_index": 0, "annotation_index": 0,
             "annotation": CITE}  # fmt: skip

    chunks = [c for event in (opened, searching, cited) for c in stream.feed(event)]

    deltas = [c["choices"][0]["delta"] for c in chunks]
    drop = "sequence_number"
    assert deltas[0] == {"hosted_events": [{k: v for k, v in opened.items() if k != drop}]}
    assert deltas[1] == {"hosted_events": [{k: v for k, v in searching.items() if k != drop}]}
    assert deltas[2] == {"annotations": [{"type": "url_citation", "url_citation": {
        "start_index": 6, "end_index": 11, "url": "https://x.y", "title": "X"}}]}  # fmt: skip
