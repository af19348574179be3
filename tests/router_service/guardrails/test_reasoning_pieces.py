"""A streamed answer's reasoning given as pieces of one entry (OpenRouter's `reasoning_details`:
`{"index": 0, "type": "reasoning.text", "text": <a few characters>}` a delta, to be merged by
their `index`): a find split across the pieces is caught, as in the unary answer that carries
the entry whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailConfig
from router_service.guardrails import AnswerGuard, Rule

pytestmark = pytest.mark.timeout(60)

EMAIL = "jane.doe@example.com"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PROSE = "The quick brown fox jumps over the lazy dog, then rests a while. "


def _rule(name: str, action: str, *detectors: str) -> Rule:
    config = {"name": name, "detect": list(detectors), "action": action}
    return Rule(GuardrailConfig.model_validate(config))


PII = _rule("pii", "redact", "email")
SECRETS = _rule("secrets", "block", "api_key")


def _chunk(finish: str = "", **delta: Any) -> chat_pb2.ChatCompletionChunk:
    extra = delta.pop("extra", None)
    message = chat_pb2.ChatMessage(**delta)
    if extra is not None:
        message.extra_json = orjson.dumps(extra).decode()
    choice = chat_pb2.ChunkChoice(index=0, delta=message)
    if finish:
        choice.finish_reason_raw = finish
        choice.finish_reason = chat_pb2.FINISH_REASON_STOP
    return chat_pb2.ChatCompletionChunk(id="c", choices=[choice])


def _pieces(reasoning: str, answer: str, size: int = 3) -> list[chat_pb2.ChatCompletionChunk]:
    """OpenRouter's stream: the reasoning `size` characters a delta (as `reasoning_details`
    pieces of entry 0), then the answer, then the finish."""
    chunks = [_chunk(role=chat_pb2.ROLE_ASSISTANT, text="")]
    for at in range(0, len(reasoning), size):
        piece = {"index": 0, "type": "reasoning.text", "text": reasoning[at : at + size]}
        chunks.append(_chunk(extra={"reasoning_details": [piece]}))
    chunks += [_chunk(text=answer), _chunk(finish="stop")]
    return chunks


def _merged(chunks: list[chat_pb2.ChatCompletionChunk]) -> tuple[str, str, str]:
    """(the reasoning entry's text as a client merges its pieces, the answer, the finish)."""
    reasoning, answer, finish = "", "", ""
    for chunk in chunks:
        for choice in chunk.choices:
            extra = orjson.loads(choice.delta.extra_json) if choice.delta.extra_json else {}
            for entry in extra.get("reasoning_details", []):
                assert entry["index"] == 0 and entry["type"] == "reasoning.text"
                reasoning += entry.get("text", "")
            answer += choice.delta.text
            finish = choice.finish_reason_raw or finish
    return reasoning, answer, finish


def test_a_find_split_across_reasoning_pieces_is_redacted() -> None:
    guard = AnswerGuard((PII,))
    reasoning = f"{PROSE}so I mail {EMAIL} about it. {PROSE}"
    out = guard.stream(1).chunks(_pieces(reasoning, "Done."))
    assert _merged(out) == (reasoning.replace(EMAIL, "[REDACTED:email]"), "Done.", "stop")
    assert guard.report() == ("pii",)


def test_a_short_reasoning_held_whole_goes_out_before_the_answer() -> None:
    guard = AnswerGuard((PII,))
    out = guard.stream(1).chunks(_pieces(f"ask {EMAIL}", "Done."))
    assert _merged(out) == ("ask [REDACTED:email]", "Done.", "stop")
    # The reasoning is released before the answer that follows it.
    kinds = ["text" if c.choices[0].delta.text else "r" for c in out if c.choices]
    assert kinds.index("text") > kinds.index("r")


def test_a_block_rule_s_find_split_across_reasoning_pieces_withholds_the_choice() -> None:
    guard = AnswerGuard((SECRETS,))
    screen = guard.stream(1)
    out = screen.chunks(_pieces(f"{PROSE}the key is {AWS_KEY}. {PROSE}", "Done."))
    reasoning, answer, finish = _merged(out)
    assert AWS_KEY not in reasoning and "AKIA" not in reasoning + answer
    assert (answer, finish) == ("", "content_filter")
    assert screen.cut and guard.report() == ("secrets",)


def test_a_find_in_a_signed_entry_s_pieces_withholds_the_choice() -> None:
    """As in a unary answer: a signed entry's text rewritten would fail its signature."""
    guard = AnswerGuard((PII,))
    chunks = _pieces(f"{PROSE}mail {EMAIL} now. {PROSE}", "Done.")
    signed = {"index": 0, "type": "reasoning.text", "text": "", "signature": "sig"}
    chunks.insert(-2, _chunk(extra={"reasoning_details": [signed]}))
    reasoning, answer, finish = _merged(guard.stream(1).chunks(chunks))
    assert EMAIL not in reasoning and (answer, finish) == ("", "content_filter")


def test_reasoning_pieces_without_finds_pass_whole_and_in_order() -> None:
    guard = AnswerGuard((PII, SECRETS))
    reasoning = PROSE * 6
    out = guard.stream(1).chunks(_pieces(reasoning, "Done."))
    assert _merged(out) == (reasoning, "Done.", "stop")
    assert guard.report() == ()


def _hosted(*events: dict[str, Any]) -> chat_pb2.ChatCompletionChunk:
    return _chunk(extra={"hosted_events": list(events)})


def test_a_find_split_across_a_hosted_call_s_argument_deltas_is_redacted() -> None:
    """A Responses upstream's MCP call streams its arguments a few characters an event."""
    guard = AnswerGuard((PII,))
    arguments = f'{{"to": "{EMAIL}", "body": "{PROSE}"}}'
    at = {"item_id": "mcp_1", "output_index": 0}
    item = {"type": "mcp_call", "id": "mcp_1", "name": "send", "arguments": arguments}
    chunks = [_chunk(role=chat_pb2.ROLE_ASSISTANT, text="")]
    chunks.append(
        _hosted({"type": "response.output_item.added", "item": {**item, "arguments": ""}})
    )
    for start in range(0, len(arguments), 3):
        piece = arguments[start : start + 3]
        chunks.append(_hosted({"type": "response.mcp_call_arguments.delta", **at, "delta": piece}))
    chunks.append(
        _hosted({"type": "response.mcp_call_arguments.done", **at, "arguments": arguments})
    )
    chunks += [_hosted({"type": "response.output_item.done", "item": item}), _chunk(text="Sent.")]
    out = guard.stream(1).chunks([*chunks, _chunk(finish="stop")])
    events = [
        event
        for chunk in out
        for choice in chunk.choices
        if choice.delta.extra_json
        for event in orjson.loads(choice.delta.extra_json).get("hosted_events", [])
    ]
    kinds = [event["type"].rpartition(".")[2] for event in events]
    said = "".join(event["delta"] for event in events if event["type"].endswith(".delta"))
    assert said == arguments.replace(EMAIL, "[REDACTED:email]")
    assert kinds[0] == "added" and kinds[-2:] == ["done", "done"] and "delta" in kinds
    assert EMAIL not in "".join(chunk.SerializeToString().decode(errors="replace") for chunk in out)
    assert {e["item_id"] for e in events if "item_id" in e} == {"mcp_1"}


def test_a_reasoning_entry_s_held_tail_goes_out_before_the_next_entry_begins() -> None:
    """OpenRouter sends its reasoning entries one after another (a `reasoning.text`, then a
    `reasoning.summary`): the tail the first one held goes out as the second begins, not
    after its first pieces (a client that appends the pieces in order read them mixed)."""
    first, second = PROSE * 4, "In short: " + PROSE * 4
    chunks = [_chunk(role=chat_pb2.ROLE_ASSISTANT, text="")]
    for index, kind, key, text in ((0, "text", "text", first), (1, "summary", "summary", second)):
        for at in range(0, len(text), 5):
            piece = {"index": index, "type": f"reasoning.{kind}", key: text[at : at + 5]}
            chunks.append(_chunk(extra={"reasoning_details": [piece]}))
    sealed = {"index": 2, "type": "reasoning.encrypted", "data": "gAAAA"}  # no text: whole
    chunks += [_chunk(extra={"reasoning_details": [sealed]}), _chunk(text="Done.")]
    out = AnswerGuard((PII,)).stream(1).chunks([*chunks, _chunk(finish="stop")])
    pieces = [
        entry
        for chunk in out
        for choice in chunk.choices
        if choice.delta.extra_json
        for entry in orjson.loads(choice.delta.extra_json).get("reasoning_details", [])
    ]
    indexes = [entry["index"] for entry in pieces]
    assert indexes == sorted(indexes)  # every piece of entry 0 before any of entry 1
    said = "".join(entry.get("text", "") + entry.get("summary", "") for entry in pieces)
    assert said == first + second
