"""The edge numbers a chat stream's extension list entries per choice and key, from 0 across the
stream; OpenAI's `tool_calls`, entries an upstream numbered and non-objects keep their form."""

from __future__ import annotations

from typing import Any

from http_edge._delta_indexes import DeltaIndexes


def chunk(*deltas: dict[str, Any]) -> dict[str, Any]:
    choices = [{"index": n, "delta": delta} for n, delta in enumerate(deltas)]
    return {"object": "chat.completion.chunk", "choices": choices}


def test_each_choice_and_key_counts_from_zero_across_the_stream() -> None:
    indexes = DeltaIndexes()
    first = indexes.number(chunk({"hosted_events": [{"type": "a"}, {"type": "b"}]}, {}))
    second = indexes.number(
        chunk({"hosted_events": [{"type": "c"}], "annotations": [{"type": "u"}]},
              {"hosted_events": [{"type": "d"}]})
    )  # fmt: skip
    assert first["choices"][0]["delta"]["hosted_events"] == [
        {"index": 0, "type": "a"}, {"index": 1, "type": "b"}
    ]  # fmt: skip
    assert second["choices"][0]["delta"] == {
        "hosted_events": [{"index": 2, "type": "c"}], "annotations": [{"index": 0, "type": "u"}]
    }  # fmt: skip
    assert second["choices"][1]["delta"] == {"hosted_events": [{"index": 0, "type": "d"}]}


def test_what_is_merged_or_numbered_already_is_left_as_it_is() -> None:
    call = {"index": 0, "function": {"arguments": "{"}}
    delta = {
        "tool_calls": [call],
        "reasoning_details": [{"index": 0, "type": "reasoning.text", "text": "Hm"}],
        "tags": ["a", "b"],
        "content": "Hi",
    }
    assert DeltaIndexes().number(chunk(dict(delta)))["choices"][0]["delta"] == delta


def test_claudes_single_blocks_become_numbered_lists_under_their_plural_keys() -> None:
    indexes = DeltaIndexes()
    call = {"type": "server_tool_use", "id": "srvtoolu_1", "input": {"query": "q"}}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    first = indexes.number(chunk({"anthropic_block": call}))
    second = indexes.number(chunk({"anthropic_block": result, "anthropic_citation": {"n": 1}}))
    assert first["choices"][0]["delta"] == {"anthropic_blocks": [{"index": 0, **call}]}
    assert second["choices"][0]["delta"] == {
        "anthropic_blocks": [{"index": 1, **result}],
        "anthropic_citations": [{"index": 0, "n": 1}],
    }
