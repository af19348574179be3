"""Citations after a redaction, through AnswerGuard on a unary answer: offsets after a find
move by what its marker changed, one inside a find goes to the marker's edge, a span wholly
redacted is dropped, a file citation's `index` moves, and two rules' edits compose. Streamed,
an annotation waits for the text it cites, and the held text is not released early for it."""

from __future__ import annotations

from typing import Any

import orjson

from clients.codec._responses_hosted import HOSTED_EVENTS
from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailConfig
from router_service.guardrails import AnswerGuard, Rule

EMAIL = "jane.doe@example.com"  # 20 characters; its marker, 16
TEXT = f"See {EMAIL} and notes.txt, codename Falcon."


def _rule(name: str, **config: Any) -> Rule:
    return Rule(GuardrailConfig.model_validate({"name": name, "action": "redact", **config}))


def _url(start: int, end: int) -> dict[str, Any]:
    return {"type": "url_citation", "url_citation": {"url": "u", "start_index": start,
            "end_index": end}}  # fmt: skip


def _screened(annotations: list[dict[str, Any]], *rules: Rule) -> tuple[str, list[Any]]:
    extra = orjson.dumps({"annotations": annotations}).decode()
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT, text=TEXT, extra_json=extra)
    completion = chat_pb2.ChatCompletion(choices=[chat_pb2.Choice(message=message)])
    AnswerGuard(rules or (_rule("pii", detect=["email"]),)).completion(completion)
    said = completion.choices[0].message
    return said.text, orjson.loads(said.extra_json)["annotations"]


def test_offsets_after_a_find_move_and_inside_it_go_to_its_marker() -> None:
    after = TEXT.index("notes")
    inside = TEXT.index("@")
    text, annotations = _screened([_url(after, after + 9), _url(0, inside), _url(inside, after)])

    assert text == "See [REDACTED:email] and notes.txt, codename Falcon."
    moved = [
        (a["url_citation"]["start_index"], a["url_citation"]["end_index"]) for a in annotations
    ]
    marker_start, marker_end = 4, 4 + len("[REDACTED:email]")
    assert moved == [(after - 4, after + 5), (0, marker_end), (marker_start, after - 4)]
    assert text[moved[0][0] : moved[0][1]] == "notes.txt"


def test_a_citation_of_only_redacted_text_is_dropped() -> None:
    start = TEXT.index(EMAIL)
    file_citation = {"type": "file_citation", "file_citation": {"file_id": "f", "index": 45}}
    _, annotations = _screened([_url(start, start + len(EMAIL)), file_citation])

    assert annotations == [{"type": "file_citation", "file_citation": {"file_id": "f",
                            "index": 41}}]  # fmt: skip


def test_two_rules_edits_compose() -> None:
    codename = _rule("codename", patterns=[r"Falcon"])
    text, annotations = _screened([_url(0, len(TEXT))], _rule("pii", detect=["email"]), codename)

    assert text == "See [REDACTED:email] and notes.txt, codename [REDACTED:pattern]."
    assert annotations[0]["url_citation"]["end_index"] == len(text)


def _cited(chunk: chat_pb2.ChatCompletionChunk) -> list[Any]:
    extra = chunk.choices[0].delta.extra_json if chunk.choices else ""
    return list(orjson.loads(extra).get("annotations", [])) if extra else []


def test_a_streamed_citation_amid_a_find_waits_for_the_text_it_cites() -> None:
    # A character a chunk; the annotations come amid the e-mail (as OpenAI may send them),
    # the text after it long enough that part of it is released before the stream ends.
    text = TEXT + " More." * 40
    start, after = TEXT.index(EMAIL), TEXT.index("notes")
    cites = [
        _url(start, start + len(EMAIL)),
        _url(after, after + 9),
        {"type": "file_citation", "file_citation": {"file_id": "f", "index": len(text)}},
    ]
    chunks = [chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        delta=chat_pb2.ChatMessage(text=c))]) for c in text]  # fmt: skip
    cited = orjson.dumps({"annotations": cites}).decode()
    chunks.insert(start + 5, chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        delta=chat_pb2.ChatMessage(extra_json=cited))]))  # fmt: skip
    chunks.append(chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        finish_reason=chat_pb2.FINISH_REASON_STOP, finish_reason_raw="stop")]))  # fmt: skip
    screen = AnswerGuard((_rule("pii", detect=["email"]),)).stream(1)

    said, given = "", []
    for chunk in screen.chunks(chunks):
        said += "".join(choice.delta.text for choice in chunk.choices)
        given += [(len(said), annotation) for annotation in _cited(chunk)]

    assert said == text.replace(EMAIL, "[REDACTED:email]")
    moved = len("[REDACTED:email]") - len(EMAIL)
    url, file = given
    assert url[1]["url_citation"]["start_index"] == after + moved
    assert url[0] < len(said) and url[1]["url_citation"]["end_index"] <= url[0]
    assert file == (len(said), {**cites[2], "file_citation": {"file_id": "f", "index": len(said)}})


def test_a_blocked_choices_citations_are_not_released_before_a_hosted_item() -> None:
    # The e-mail blocks the choice; its citation came amid the text, then a hosted tool's item
    # began (the held text flushed before it): the citation must not go out ahead of the block.
    start = TEXT.index(EMAIL)
    cited = orjson.dumps({"annotations": [_url(start, start + len(EMAIL))]}).decode()
    item = {"type": "web_search_call", "id": "ws_1"}
    added = {"type": "response.output_item.added", "output_index": 1, "item": item}
    hosted = orjson.dumps({HOSTED_EVENTS: [added]}).decode()
    chunks = [chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        delta=chat_pb2.ChatMessage(text=c))]) for c in TEXT]  # fmt: skip
    chunks += [chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        delta=chat_pb2.ChatMessage(extra_json=extra))]) for extra in (cited, hosted)]  # fmt: skip
    block = Rule(GuardrailConfig.model_validate(
        {"name": "pii", "action": "block", "detect": ["email"]}))  # fmt: skip

    out = AnswerGuard((block,)).stream(1).chunks(chunks)

    assert [annotation for chunk in out for annotation in _cited(chunk)] == []
    assert [c.finish_reason_raw for chunk in out for c in chunk.choices] == ["content_filter"]


def test_a_cut_streams_held_citations_go_as_its_held_text_does() -> None:
    # The stream is cut (no finish: an error event ends it): its held text never goes out (a
    # find may begin in it), so neither does a citation of that text; one of the text released
    # before the cut went out with it.
    text = TEXT + " More." * 40  # long enough that its start is released before the cut
    cites = [_url(0, 3), _url(len(text) - 5, len(text))]
    chunks = [chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        delta=chat_pb2.ChatMessage(text=c))]) for c in text]  # fmt: skip
    cited = orjson.dumps({"annotations": cites}).decode()
    chunks.insert(10, chat_pb2.ChatCompletionChunk(choices=[chat_pb2.ChunkChoice(
        delta=chat_pb2.ChatMessage(extra_json=cited))]))  # fmt: skip

    out = AnswerGuard((_rule("pii", detect=["email"]),)).stream(1).chunks(chunks)

    said = "".join(choice.delta.text for chunk in out for choice in chunk.choices)
    assert 0 < len(said) < len(text) - 128  # the last 128 characters or more held at the cut
    assert [annotation for chunk in out for annotation in _cited(chunk)] == [cites[0]]
