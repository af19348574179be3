"""Compaction items and compaction requests, the codec's side: the `sbc1.` encoding read back
where the item stood, what is not ours refused by its path; and a compaction run by a gRPC
caller over `RouterClient.chat` with the same helpers the edge uses (a real router)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from clients import (
    COMPACTION_PREFIX,
    SUMMARY_INSTRUCTION,
    InvalidRequestError,
    ResponseIds,
    RouterClient,
    chat_params_to_openai,
    compact_request_from_openai,
    compacted_response,
    encode_compaction,
    input_tokens_of,
    responses_request_from_openai,
)
from clients.codec._responses_request import History
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1.router_service_pb2 import ChatRequest
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle


def sent(item: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"model": "m", "input": [item, {"role": "user", "content": "go on"}]}
    messages: list[dict[str, Any]] = chat_params_to_openai(
        responses_request_from_openai(body).params
    )["messages"]
    return messages


def test_a_compaction_is_its_summary_in_its_place() -> None:
    item = {"type": "compaction", "encrypted_content": encode_compaction("Ann; tea; Oslo. ✓")}
    assert item["encrypted_content"].startswith(COMPACTION_PREFIX)
    assert sent(item) == [
        {"role": "system", "content": "Summary of the earlier conversation:\nAnn; tea; Oslo. ✓"},
        {"role": "user", "content": "go on"},
    ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    "content",
    [
        "gAAAAABpZ2Vu-openai",  # OpenAI's own
        COMPACTION_PREFIX + "%%%not base64",
        COMPACTION_PREFIX + _b64(b"not json"),
        COMPACTION_PREFIX + _b64(b'{"v": 2, "summary": "later"}'),
        COMPACTION_PREFIX + _b64(b'{"v": 1, "summary": 3}'),
        COMPACTION_PREFIX + _b64(b"[1]"),
    ],
)
def test_what_is_not_ours_is_refused_by_its_path(content: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        sent({"type": "compaction", "encrypted_content": content})
    assert refused.value.param == "input[0].encrypted_content"


def test_a_compaction_without_content_is_refused_by_its_path() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        sent({"type": "compaction"})
    assert refused.value.param == "input[0].encrypted_content"


async def test_a_grpc_caller_compacts_over_chat(router: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(content="Ann likes tea."))
    request = compact_request_from_openai(
        {"model": "chain", "input": "I am Ann; I like tea.", "store": False}
    )
    assert request.params.messages[-1].text == SUMMARY_INSTRUCTION
    async with RouterClient(router.server.address) as client:
        answer = await client.chat(ChatRequest(params=request.params))
    ids = ResponseIds("resp_" + "ab" * 16)
    out = compacted_response(request, answer.completion, ids, 1_700_000_123)
    assert out["object"] == "response.compaction" and out["id"] == "resp_" + "ab" * 16
    assert out["created_at"] == 1_700_000_123
    [user, item] = out["output"]
    assert user["content"] == [{"type": "input_text", "text": "I am Ann; I like tea."}]
    assert item["encrypted_content"] == encode_compaction("Ann likes tea.")
    assert out["usage"]["total_tokens"] == answer.completion.usage.total_tokens > 0


@pytest.mark.parametrize("parse", [compact_request_from_openai, input_tokens_of])
def test_nothing_to_compact_or_count_is_refused_by_input(parse: Any) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse({"model": "m", "input": []})
    assert refused.value.param == "input"


def test_instructions_alone_are_counted_but_not_compacted() -> None:
    body = {"model": "m", "instructions": "Be brief."}
    assert input_tokens_of(body) == ("m", len("Be brief.") // 4 + 4)
    with pytest.raises(InvalidRequestError):
        compact_request_from_openai(body)


def test_tool_calls_and_results_are_summarised_as_text() -> None:
    """A compaction sends no tool definitions, and Anthropic refuses tool_use blocks without
    them: the calls and their results reach the summary as text."""
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"at":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "Rain, 4 C"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "note", "input": "rain\n"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "noted"},
            {"role": "assistant", "content": "It rains."},
        ],
    }
    messages = chat_params_to_openai(compact_request_from_openai(body).params)["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": '[Tool call c1: weather({"at":1})]'},
        {"role": "user", "content": "[The result of tool call c1]\nRain, 4 C"},
        {"role": "assistant", "content": "[Tool call c2: note]\nrain\n"},
        {"role": "user", "content": "[The result of tool call c2]\nnoted"},
        {"role": "assistant", "content": "It rains."},
        {"role": "user", "content": SUMMARY_INSTRUCTION},
    ]


def test_a_hosted_items_place_in_its_answer_is_not_summarised() -> None:
    """A stored answer's hosted item keeps where it came in the answer's text (`text_at`):
    its form, like its id, not something it said."""
    search = {"type": "web_search_call", "id": "ws_1", "status": "completed", "text_at": 8,
              "action": {"type": "search", "query": "weather in Paris"}}  # fmt: skip
    answer = chat_pb2.ChatMessage(
        role=chat_pb2.ROLE_ASSISTANT,
        text="Looking.Sunny.",
        extra_json=orjson.dumps({"hosted_items": [search]}).decode(),
    )
    history = History(
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="Paris?"), answer]
    )
    body = {"model": "m", "previous_response_id": "resp_1"}
    messages = chat_params_to_openai(compact_request_from_openai(body, history).params)["messages"]
    action = '{"action":{"type":"search","query":"weather in Paris"}}'
    assert messages[1] == {
        "role": "assistant",
        "content": f"Looking.Sunny.\n[web_search_call ws_1]\n{action}",
    }
