"""Claude on Vertex AI refuses a document or an image by URL ("URL sources are not supported"):
a request linking one passes a Vertex Claude deployment over, before a key is leased, to the
group's next deployment (Anthropic's API fetches the link); one with the data stays on Vertex."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_documents import LINKED_DOC, PDF_DOC, ask
from tests.e2e.test_anthropic_sdk import config
from tests.e2e.test_reasoning_sdk import VERTEX


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`linked`: Claude on Vertex first, then Claude on Anthropic's API."""
    out = config(fake)
    out["providers"]["vx"] = {**VERTEX, "base_url": fake.url, "publisher": "anthropic"}
    deployments = [
        {"provider": "vx", "model": "claude-vertex"},
        {"provider": "claude", "model": "claude-x"},
    ]
    out["models"]["linked"] = {"deployments": deployments}
    return await start_router(out)


LINKED_IMAGE: Any = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
# A 1x1 PNG's bytes are not checked by the fake: any base64 stands for them.
DATA_IMAGE: Any = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
}


@pytest.mark.parametrize(
    ("document", "model"),
    [(LINKED_DOC, "claude-x"), (PDF_DOC, ""), (LINKED_IMAGE, "claude-x"), (DATA_IMAGE, "")],
)
async def test_a_linked_document_passes_vertex_over(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, document: Any, model: str
) -> None:
    await claude.messages.create(model="linked", max_tokens=64, messages=ask(document))
    [sent] = fake.state.calls()
    assert ("rawPredict" in sent.path) == (model == "")  # Vertex's: the model in its URL
    assert sent.body.get("model", "") == model
    assert sent.body["messages"][0]["content"][0] == document


@pytest.mark.parametrize("content", [["not a block"], [None]])
async def test_a_malformed_block_for_claude_reaches_vertex_as_written_not_a_500(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, content: Any
) -> None:
    """A text part carrying a block only Claude reads (`anthropic_block`) from a caller of the
    chat API, its `content` not blocks: sent to Vertex's Claude as written (whose 400 says what
    is wrong with it, as Anthropic's API does), not failing the router's own check for linked
    documents (a 500, "Internal router error")."""
    block = {"type": "search_result", "content": content}
    part: Any = {"type": "text", "text": "see", "anthropic_block": block}
    await sdk.chat.completions.create(
        model="linked", messages=[{"role": "user", "content": [part]}]
    )
    [sent] = fake.state.calls()
    assert "rawPredict" in sent.path and sent.body["messages"][0]["content"][0] == block
