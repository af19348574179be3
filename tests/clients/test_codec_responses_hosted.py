"""OpenAI's hosted tools' items in a Responses stream the edge writes
(`clients.codec._responses_stream`, `_responses_hosted`): a Responses upstream's events of a
web search call (the router's `hosted_events` deltas) are said as they came, at the edge's own
output index and sequence numbers, and a citation of the text (an `annotations` delta) is the
message's (an event of an item never opened is not said); every event checked against the
openai SDK's `ResponseStreamEvent` union."""

from __future__ import annotations

from typing import Any

import pytest

from clients.codec._responses_hosted import is_hosted_event, split_messages
from tests.clients.test_codec_responses_stream import USAGE, chunk, kinds, run
from tests.router_service.providers.test_responses_hosted_order import CITE, SEARCH


def hosted(kind: str, **fields: Any) -> Any:
    """A chunk of one hosted event, as the router's Responses stream writes it."""
    event = {"type": kind, "output_index": 4, **fields}  # the upstream's index: not the edge's
    return chunk({"hosted_events": [event]})


def test_a_web_search_call_then_cited_text() -> None:
    cited = {"type": "url_citation", "url_citation": {k: v for k, v in CITE.items() if k != "type"}}
    events = run(
        chunk({"role": "assistant", "content": ""}),
        hosted("response.output_item.added", item={**SEARCH, "status": "in_progress"}),
        hosted("response.web_search_call.searching", item_id="ws_1"),
        hosted("response.web_search_call.searching", item_id="ws_9"),  # never opened: not said
        hosted("response.web_search_call.completed", item_id="ws_1"),
        hosted("response.output_item.done", item=SEARCH),
        chunk({"content": "Sunny"}),
        chunk({"annotations": [cited]}),
        chunk({}, "stop"),
        chunk(None, usage=USAGE),
    )

    searched = [e for e in events if e["type"].startswith("response.web_search_call.")]
    assert [(e["output_index"], e["item_id"]) for e in searched] == [(0, "ws_1")] * 2
    (added,) = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert (added["output_index"], added["annotation_index"], added["annotation"]) == (1, 0, CITE)
    assert kinds(events).index("response.output_item.done") < kinds(events).index(
        "response.output_text.delta"
    )
    search, message = events[-1]["response"]["output"]
    assert search == SEARCH
    assert message["content"][0]["annotations"] == [CITE]


@pytest.mark.parametrize(
    ("event", "hosted"),
    [
        ({"type": "response.image_generation_call.partial_image", "partial_image_b64": "x"}, True),
        ({"type": "response.code_interpreter_call_code.delta", "delta": "print(1)"}, True),
        ({"type": "response.code_interpreter_call.interpreting"}, True),
        ({"type": "response.file_search_call.searching"}, True),
        ({"type": "response.mcp_list_tools.completed"}, True),
        ({"type": "response.output_item.added", "item": {"type": "computer_call"}}, True),
        ({"type": "response.output_item.done", "item": {"type": "mcp_approval_request"}}, True),
        ({"type": "response.output_item.added", "item": {"type": "message"}}, False),
        ({"type": "response.output_text.delta", "delta": "x"}, False),
        ({"type": "response.function_call_arguments.delta", "delta": "{"}, False),
    ],
)
def test_which_stream_events_are_a_hosted_item_s(event: dict[str, Any], hosted: bool) -> None:
    assert is_hosted_event(event) is hosted


def test_a_file_citation_at_a_message_s_end_stays_with_it() -> None:
    # `index` is where the citation stands, after the text it cites: at a cut, the end of
    # the message before it (a url citation's span starting there is the next one's).
    cited = {"type": "file_citation", "file_id": "file-1", "index": 5}
    spans = {"type": "url_citation", "start_index": 5, "end_index": 8, "url": "u"}
    call = {"type": "file_search_call", "id": "fs_1", "precedes": 1, "text_at": 5}
    pieces, _ = split_messages("Notes.Yes", [cited, spans], [call])

    assert pieces == [
        ("Notes", [cited]),
        (".Yes", [{**spans, "start_index": 0, "end_index": 3}]),
    ]
