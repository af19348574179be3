"""Claude on Vertex AI refuses a document by URL ("URL sources are not supported"): a request
linking one passes a Vertex Claude deployment over, before a key is leased, to the group's next
deployment (Anthropic's API fetches the link); one with the PDF's data stays on Vertex."""

from __future__ import annotations

from typing import Any

import anthropic
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


@pytest.mark.parametrize(("document", "model"), [(LINKED_DOC, "claude-x"), (PDF_DOC, "")])
async def test_a_linked_document_passes_vertex_over(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, document: Any, model: str
) -> None:
    await claude.messages.create(model="linked", max_tokens=64, messages=ask(document))
    [sent] = fake.state.calls()
    assert ("rawPredict" in sent.path) == (model == "")  # Vertex's: the model in its URL
    assert sent.body.get("model", "") == model
    assert sent.body["messages"][0]["content"][0] == document
