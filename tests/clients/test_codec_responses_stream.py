"""Chat chunks → Responses stream events (`clients.codec._responses_stream`), each event checked
against the openai SDK's `ResponseStreamEvent` union (strict pydantic validation)."""

from __future__ import annotations

from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from clients import ResponseEventStream, ResponseIds, responses_request_from_openai
from clients.codec import chunk_from_openai

EVENT = TypeAdapter[Any](ResponseStreamEvent)


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> Any:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
    return chunk_from_openai({**body, "choices": choices, **top})


def run(*chunks: Any, **request: Any) -> list[dict[str, Any]]:
    parsed = responses_request_from_openai({"model": "chain", "input": "hi", **request})
    stream = ResponseEventStream(parsed, ResponseIds("resp_abc"), created_at=100)
    events = stream.start()
    for c in chunks:
        events += stream.feed(c)
    events += stream.finish(completed_at=101)
    for event in events:
        EVENT.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


USAGE = {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_text() -> None:
    events = run(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        chunk(usage=USAGE),
    )
    assert kinds(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert (
        events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    )
    assert [e["delta"] for e in events if e["type"].endswith("text.delta")] == ["Hel", "lo"]
    assert events[4]["item_id"] == "msg_abc" and events[4]["output_index"] == 0
    assert events[6]["text"] == "Hello"
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["completed_at"] == 101
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][0]["status"] == "completed"
    assert final["usage"]["total_tokens"] == 4 and final["model"] == "gpt-x"


def test_tool_calls() -> None:
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    second = {"index": 1, "id": "call_2", "type": "function", "function": {"name": "g"}}
    events = run(
        chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [second]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        tools=[{"type": "function", "name": "f"}, {"type": "function", "name": "g"}],
    )
    assert kinds(events)[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2]["item"]
    assert added == {
        "id": "fc_abc",
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": "",
        "status": "in_progress",
    }
    assert events[7]["arguments"] == '{"a":1}' and events[7]["output_index"] == 0
    assert events[9]["arguments"] == "{}" and events[9]["item_id"] == "fc_abc_2"
    output = events[-1]["response"]["output"]
    assert [(o["call_id"], o["arguments"], o["status"]) for o in output] == [
        ("call_1", '{"a":1}', "completed"),
        ("call_2", "{}", "completed"),
    ]


def test_reasoning_then_text_then_a_call() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    events = run(
        chunk({"reasoning_content": "Think"}),
        chunk({"reasoning_content": "ing."}),
        chunk({"content": "Let me check."}),
        chunk({"tool_calls": [call]}),
        chunk({}, "tool_calls"),
    )
    assert kinds(events)[2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    output = events[-1]["response"]["output"]
    assert [o["type"] for o in output] == ["reasoning", "message", "function_call"]
    assert output[0]["content"] == [{"type": "reasoning_text", "text": "Thinking."}]
    assert [o["id"] for o in output] == ["rs_abc", "msg_abc", "fc_abc"]


def test_a_length_finish_ends_incomplete() -> None:
    events = run(chunk({"content": "Once upon"}), chunk({}, "length"), max_output_tokens=2)
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"
    assert final["response"]["max_output_tokens"] == 2


def test_a_failure_after_the_commit_is_an_error_event_then_response_failed() -> None:
    parsed = responses_request_from_openai({"model": "chain", "input": "hi", "stream": True})
    stream = ResponseEventStream(parsed, ResponseIds("resp_abc"), created_at=100)
    events = [*stream.start(), *stream.feed(chunk({"content": "Hel"}))]
    events += stream.fail("upstream stalled", "stalled")
    for event in events:
        EVENT.validate_python(event)
    assert events[-2] == {
        "type": "error",
        "sequence_number": len(events) - 2,
        "code": "stalled",
        "message": "upstream stalled",
        "param": None,
    }
    failed = events[-1]["response"]
    assert events[-1]["type"] == "response.failed" and failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "upstream stalled"}
    assert failed["output"][0]["type"] == "message"  # what had come, as it stood


def test_a_refusal_streams_as_a_message_with_a_refusal_part() -> None:
    events = run(
        chunk({"role": "assistant", "refusal": ""}),
        chunk({"refusal": "I can't "}),
        chunk({"refusal": "help with that."}),
        chunk({}, "stop"),
    )
    assert kinds(events)[2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[3]["part"] == {"type": "refusal", "refusal": ""}
    assert [e["delta"] for e in events if e["type"] == "response.refusal.delta"] == [
        "I can't ",
        "help with that.",
    ]
    assert events[6]["refusal"] == "I can't help with that."
    item = events[-1]["response"]["output"][0]
    assert item["type"] == "message" and item["id"].startswith("msg_")
    assert item["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]
