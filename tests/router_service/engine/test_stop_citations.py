"""An answer's citations where the router cuts it at a stop sequence: a citation that begins
before the cut is kept, its span ended at the cut; one of text past the cut (or a file
citation's point past it) is dropped, as that text is. Streamed, a citation waits for the text
it cites (it may come amid the text, before the stop does), with the stops alone or with the
answer's guardrails after them."""

from __future__ import annotations

from typing import Any

import orjson

from clients.switchboard.v1 import chat_pb2
from router_service.engine._stops import ChainedFilters, StreamStops, cut_completion
from router_service.guardrails import AnswerGuard
from tests.router_service.engine.test_stops import Chunk, delta
from tests.router_service.guardrails.test_citations import _rule, _url

TEXT = "Paris is sunny. END Rome is rainy."
CUT = TEXT.index(" END")  # what the caller sees: "Paris is sunny."


def _file(index: int) -> dict[str, Any]:
    return {"type": "file_citation", "file_citation": {"file_id": "f", "index": index}}


CITES = [_url(0, len(TEXT)), _url(CUT + 5, len(TEXT)), _file(CUT), _file(len(TEXT))]
KEPT = [_url(0, CUT), _file(CUT)]  # the first ended at the cut; those past it dropped


def _cited(chunks: list[Chunk]) -> list[Any]:
    extras = [c.delta.extra_json for chunk in chunks for c in chunk.choices]
    return [a for extra in extras if extra for a in orjson.loads(extra).get("annotations", [])]


def test_a_cut_completion_keeps_only_citations_of_what_it_shows() -> None:
    extra = orjson.dumps({"annotations": CITES, "other": 1}).decode()
    message = chat_pb2.ChatMessage(text=TEXT, extra_json=extra)
    completion = chat_pb2.ChatCompletion(choices=[chat_pb2.Choice(message=message)])

    cut_completion(completion, [" END"])

    said = completion.choices[0].message
    assert said.text == TEXT[:CUT]
    assert orjson.loads(said.extra_json) == {"annotations": KEPT, "other": 1}


def _stream(pieces: list[str], cite_after: int) -> list[Chunk]:
    """A stream of `pieces`, the citations in a chunk of their own after `cite_after` of them."""
    chunks = [delta(0, piece) for piece in pieces]
    cited = Chunk(id="c", model="m", choices=[chat_pb2.ChunkChoice(index=0)])
    cited.choices[0].delta.extra_json = orjson.dumps({"annotations": CITES}).decode()
    chunks.insert(cite_after, cited)
    return [*chunks, delta(0, "", finish="stop")]


def test_a_cut_stream_sends_only_citations_of_what_it_shows() -> None:
    pieces = ["Paris ", "is sunny.", " END Rome", " is rainy."]
    for cite_after in range(len(pieces) - 1):  # the citations come before the stop does
        stops = StreamStops([" END"], choices=1, prompt_tokens=1)
        out = stops.chunks(_stream(pieces, cite_after))

        said = "".join(c.delta.text for chunk in out for c in chunk.choices)
        assert said == TEXT[:CUT] and stops.cut
        assert _cited(out) == KEPT, cite_after


def test_a_stream_not_cut_sends_its_citations_whole() -> None:
    # Each as soon as the text it cites is out (a file citation at the cut, before the rest).
    stops = StreamStops(["STOP"], choices=1, prompt_tokens=1)
    out = stops.chunks(_stream(["Paris ", "is sunny.", " END Rome", " is rainy."], 1))

    assert "".join(c.delta.text for chunk in out for c in chunk.choices) == TEXT
    assert sorted(map(orjson.dumps, _cited(out))) == sorted(map(orjson.dumps, CITES))


def test_a_cut_stream_screened_after_the_stops_sends_only_citations_of_what_it_shows() -> None:
    stops = StreamStops([" END"], choices=1, prompt_tokens=1)
    screen = AnswerGuard((_rule("pii", detect=["email"]),)).stream(1)
    out = ChainedFilters(stops, screen).chunks(_stream(["Paris is", " sunny. END Rome"], 1))

    assert "".join(c.delta.text for chunk in out for c in chunk.choices) == TEXT[:CUT]
    assert _cited(out) == KEPT
