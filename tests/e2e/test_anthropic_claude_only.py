"""Blocks only Claude reads, through the edge's `/v1/messages`: a custom content document
(`source.type: "content"`) and a `search_result` (a user turn's, a tool_result's). A Claude
deployment gets each as the caller wrote it and its answer cites them (`content_block_location`,
`search_result_location`), unary and streamed; any other kind reads their text as a text part,
without Anthropic's block; a malformed one is a 400 naming its path."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._anthropic_server import CITING
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_anthropic_documents import answered, ask
from tests.e2e.test_anthropic_documents import router as router
from tests.e2e.test_anthropic_sdk import config

CONTENT_DOC: Any = {
    "type": "document",
    "source": {"type": "content", "content": [{"type": "text", "text": "The sky is blue."}]},
    "title": "Sky",
    "citations": {"enabled": True},
}
RESULT: Any = {
    "type": "search_result",
    "source": "https://example.com/sky",
    "title": "Sky facts",
    "content": [{"type": "text", "text": "The sky is blue."}],
    "citations": {"enabled": True},
}
CALL: Any = {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {"q": "sky"}}
TOOLS: Any = [{"name": "search", "input_schema": {"type": "object"}}]


def searched(*results: Any) -> list[Any]:
    """A tool loop whose search tool answered with `results`."""
    answer = {"type": "tool_result", "tool_use_id": "toolu_1", "content": list(results)}
    return [
        {"role": "user", "content": "what colour is the sky?"},
        {"role": "assistant", "content": [CALL]},
        {"role": "user", "content": [answer]},
    ]


def citation_of(message: anthropic.types.Message) -> Any:
    [before, block] = message.content
    assert before.type == "text" and before.text == CITING
    assert block.type == "text"
    [citation] = block.citations or []
    return citation


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_gets_a_custom_content_document_as_written_and_cites_it(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    message, _ = await answered(claude, stream, "sonnet", ask(CONTENT_DOC))
    sent = fake.state.last()
    assert sent is not None and sent.body["messages"][0]["content"][0] == CONTENT_DOC
    citation = citation_of(message)
    assert citation.type == "content_block_location" and citation.document_title == "Sky"
    assert (citation.start_block_index, citation.end_block_index) == (0, 1)


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_gets_search_results_as_written_and_cites_them(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    cached = RESULT | {"cache_control": {"type": "ephemeral"}}
    request: Any = {"model": "sonnet", "max_tokens": 64, "tools": TOOLS}
    if stream:
        async with claude.messages.stream(**request, messages=searched(cached)) as events:
            message = await events.get_final_message()
    else:
        message = await claude.messages.create(**request, messages=searched(cached))
    sent = fake.state.last()
    assert sent is not None
    [result] = sent.body["messages"][-1]["content"]
    assert result["type"] == "tool_result" and result["content"] == [cached]
    citation = citation_of(message)
    assert citation.type == "search_result_location" and citation.search_result_index == 0
    assert (citation.source, citation.title) == (RESULT["source"], RESULT["title"])
    # In a user turn too.
    await claude.messages.create(model="sonnet", max_tokens=64, messages=ask(RESULT))
    sent = fake.state.last()
    assert sent is not None and sent.body["messages"][0]["content"][0] == RESULT


@pytest.mark.parametrize("model", ["chain", "strict-group"])
async def test_another_kind_reads_their_text(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    message = await claude.messages.create(
        model=model, max_tokens=64, messages=ask(CONTENT_DOC, RESULT)
    )
    assert [block.type for block in message.content] == ["text"]
    sent = fake.state.last()
    assert sent is not None
    [document, result, _] = sent.body["messages"][0]["content"]
    assert document == {"type": "text", "text": "Sky\n\nThe sky is blue."}
    assert result == {
        "type": "text",
        "text": "Sky facts\nhttps://example.com/sky\n\nThe sky is blue.",
    }
    await claude.messages.create(model=model, max_tokens=64, messages=searched(RESULT), tools=TOOLS)
    sent = fake.state.last()
    assert sent is not None
    tool = sent.body["messages"][-1]
    assert tool["role"] == "tool" and "anthropic_block" not in str(tool["content"])
    assert "Sky facts" in str(tool["content"])


@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({k: v for k, v in RESULT.items() if k != "source"}, "messages[0].content[0].source"),
        (RESULT | {"content": "text"}, "messages[0].content[0].content"),
        (
            CONTENT_DOC | {"source": {"type": "content", "content": [{"type": "audio"}]}},
            "messages[0].content[0].source.content[0].type",
        ),
    ],
)
async def test_a_malformed_one_is_refused_naming_its_path(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, block: Any, param: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model="sonnet", max_tokens=64, messages=ask(block))
    assert param in str(caught.value)
    assert fake.state.last() is None


async def test_request_guardrails_screen_the_block_claude_gets(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A redact rule's find in a search result is redacted in the block Claude gets (carried
    beside the text other kinds read, it is screened as that text is)."""
    screened = config(fake)
    screened["guardrails"] = [
        {"name": "no-sky", "patterns": ["blue"], "action": "redact", "apply_to": ["request"]}
    ]
    edge = await start_edge(await start_router(screened))
    async with anthropic.AsyncAnthropic(
        base_url=edge.base_url, api_key="sk-caller", max_retries=0, timeout=10
    ) as claude:
        await claude.messages.create(
            model="sonnet", max_tokens=64, messages=ask(RESULT, CONTENT_DOC)
        )
    sent = fake.state.last()
    assert sent is not None
    [result, document, _] = sent.body["messages"][0]["content"]
    assert (result["type"], document["type"]) == ("search_result", "document")
    assert "blue" not in str(result) and "blue" not in str(document)
    assert result["source"] == RESULT["source"] and result["title"] == RESULT["title"]
