"""Documents through the edge's `/v1/messages`: Anthropic's SDK → the edge → the router → the
fake upstream. A Claude deployment gets a `document` block as the caller wrote it (its source,
`title`, `context` and `citations` config) and its answer's citations come back as Claude gave
them (`char_location` in a text document, `page_location` in a PDF), unary and streamed (as
`citations_delta`). An OpenAI-format deployment reads the document as a file part named by its
title; a strict server gets neither `citations` nor `context` (Anthropic's words it would
refuse), so its answer cites nothing."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._anthropic_server import CITING
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_sdk import config

TEXT_DOC: Any = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."},
    "title": "Sky",
    "context": "From the weather almanac.",
    "citations": {"enabled": True},
}
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()
PDF_DOC: Any = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    "title": "Report",
    "citations": {"enabled": True},
}
LINKED_DOC: Any = {
    "type": "document",
    "source": {"type": "url", "url": "https://example.com/report.pdf"},
    "title": "Linked",
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`sonnet`: Claude; `chain`: OpenAI-format servers on loopback (which take every
    field); `strict`: an OpenAI-format server that takes none (as api.openai.com)."""
    out = config(fake)
    out["providers"]["strict"] = {"base_url": fake.base_url, "keys": ["sk-s"], "message_fields": []}
    out["models"]["strict-group"] = {"deployments": [{"provider": "strict", "model": "strict"}]}
    return await start_router(out)


def ask(*documents: Any) -> list[Any]:
    return [{"role": "user", "content": [*documents, {"type": "text", "text": "what colour?"}]}]


async def answered(
    claude: anthropic.AsyncAnthropic, stream: bool, model: str, messages: list[Any]
) -> tuple[anthropic.types.Message, list[Any]]:
    """The answer (as the SDK assembled it, streamed) and the citations_delta deltas."""
    request: Any = {"model": model, "max_tokens": 64, "messages": messages}
    if not stream:
        return await claude.messages.create(**request), []
    async with claude.messages.stream(**request) as events:
        deltas = [
            event.delta
            async for event in events
            if event.type == "content_block_delta" and event.delta.type == "citations_delta"
        ]
        return await events.get_final_message(), deltas


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_gets_the_document_as_written_and_its_answer_cites_it(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    message, deltas = await answered(claude, stream, "sonnet", ask(LINKED_DOC, TEXT_DOC))
    sent = fake.state.last()
    assert sent is not None
    assert sent.body["messages"][0]["content"][:2] == [LINKED_DOC, TEXT_DOC]
    # Claude's blocks as it gave them: the uncited text apart from the cited one, streamed too.
    [before, block] = message.content
    assert before.type == "text" and before.text == CITING and not before.citations
    assert block.type == "text" and block.text == "Echo: what colour?"
    [citation] = block.citations or []
    assert citation.model_dump(exclude_none=True) == {
        "type": "char_location",
        "cited_text": block.text,
        "document_index": 1,
        "document_title": "Sky",
        "start_char_index": 0,
        "end_char_index": len(block.text),
    }
    if stream:
        assert [delta.citation for delta in deltas] == [citation]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_pdfs_citations_are_page_locations(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    message, _ = await answered(claude, stream, "sonnet", ask(PDF_DOC))
    sent = fake.state.last()
    assert sent is not None and sent.body["messages"][0]["content"][0] == PDF_DOC
    [citation] = getattr(message.content[-1], "citations", None) or []
    assert citation.type == "page_location" and citation.document_title == "Report"
    assert (citation.start_page_number, citation.end_page_number) == (1, 2)


@pytest.mark.parametrize(("model", "kept"), [("chain", True), ("strict-group", False)])
async def test_an_openai_format_deployment_reads_the_document_as_a_file(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str, kept: bool
) -> None:
    message = await claude.messages.create(model=model, max_tokens=64, messages=ask(TEXT_DOC))
    assert [block.type for block in message.content] == ["text"]
    assert getattr(message.content[0], "citations", None) is None
    sent = fake.state.last()
    assert sent is not None
    part = sent.body["messages"][0]["content"][0]
    assert part["type"] == "file" and part["file"]["filename"] == "Sky"
    assert part["file"]["file_data"].startswith("data:text/plain;base64,")
    anthropic_words = {"citations": TEXT_DOC["citations"], "context": TEXT_DOC["context"]}
    assert {key: part[key] for key in anthropic_words if key in part} == (
        anthropic_words if kept else {}
    )


async def test_a_linked_pdf_goes_to_claude_as_a_url_source(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    """A document by URL was sent as a base64 source whose data was the URL (a 400 at Claude);
    an OpenAI-format deployment gets the link as the file part's `file_id`."""
    await claude.messages.create(model="sonnet", max_tokens=64, messages=ask(LINKED_DOC))
    sent = fake.state.last()
    assert sent is not None and sent.body["messages"][0]["content"][0] == LINKED_DOC
    await claude.messages.create(model="chain", max_tokens=64, messages=ask(LINKED_DOC))
    sent = fake.state.last()
    assert sent is not None
    linked = {"file_id": LINKED_DOC["source"]["url"], "filename": "Linked"}
    assert sent.body["messages"][0]["content"][0] == {"type": "file", "file": linked}
