"""A Responses upstream's reasoning items, kept (Codex asked for their encrypted content),
streamed on through the edge: each item's streamed summary is its final summary, and an item
without a summary streams no summary part (as OpenAI's own stream)."""

from __future__ import annotations

from typing import Any

from clients import ResponseEventStream, ResponseIds, responses_request_from_openai
from clients.codec import chunk_from_openai
from router_service.providers._responses_stream import ResponsesStream

SECRET = "gAAAA-opaque"


def reasoning(item_id: str, *summary: str) -> dict[str, Any]:
    parts = [{"type": "summary_text", "text": text} for text in summary]
    return {"type": "reasoning", "id": item_id, "summary": parts, "encrypted_content": SECRET}


def streamed(item_id: str, *summary: str) -> list[dict[str, Any]]:
    """A reasoning item's events, as OpenAI streams it: a part for each paragraph of its summary."""
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "item": {"type": "reasoning", "id": item_id}}
    ]
    for i, text in enumerate(summary):
        where = {"item_id": item_id, "summary_index": i}
        events.append({"type": "response.reasoning_summary_part.added", **where})
        events.append({"type": "response.reasoning_summary_text.delta", **where, "delta": text})
    return [*events, {"type": "response.output_item.done", "item": reasoning(item_id, *summary)}]


UPSTREAM: list[dict[str, Any]] = [
    {"type": "response.created", "response": {"id": "resp_u", "model": "m", "created_at": 1}},
    *streamed("rs_1", "One."),
    *streamed("rs_2"),
    *streamed("rs_3", "Two."),
    {"type": "response.output_text.delta", "delta": "Done."},
    {"type": "response.completed", "response": {"status": "completed", "output": []}},
]


def edge_events() -> list[dict[str, Any]]:
    upstream = ResponsesStream("m", 1, keep_reasoning=True)
    body = {"model": "codex", "input": "hi", "include": ["reasoning.encrypted_content"]}
    edge = ResponseEventStream(responses_request_from_openai(body), ResponseIds("resp_e"), 100)
    events = edge.start()
    for event in UPSTREAM:
        for chunk in upstream.feed(event):
            events += edge.feed(chunk_from_openai(chunk))
    return events + edge.finish(completed_at=101)


def test_streamed_summaries_agree_with_the_final_reasoning_items() -> None:
    events = edge_events()

    done = [e["item"] for e in events if e["type"] == "response.output_item.done"][:3]
    assert [item["id"] for item in done] == ["rs_1", "rs_2", "rs_3"]
    summaries = [[part["text"] for part in item["summary"]] for item in done]
    assert summaries == [["One."], [], ["Two."]]
    parts = [e for e in events if e["type"].startswith("response.reasoning_summary_part.")]
    assert [(e["type"].rsplit(".", 1)[1], e["item_id"]) for e in parts] == [
        ("added", "rs_1"), ("done", "rs_1"), ("added", "rs_3"), ("done", "rs_3")
    ]  # fmt: skip
    said = [e for e in events if e["type"] == "response.reasoning_summary_text.delta"]
    for item, texts in zip(done, summaries, strict=True):
        assert ["".join(e["delta"] for e in said if e["item_id"] == item["id"])] == (texts or [""])
    ended = [e["text"] for e in events if e["type"] == "response.reasoning_summary_text.done"]
    assert ended == ["One.", "Two."]
