"""Request guardrails read a plain-text document: Anthropic's SDK → the edge → the router → the
fake upstream. The entrance carries such a document as a base64 `text/plain` file part, which
the screen once passed over, so a secret or an email in it reached the upstream as written
while the same text in a message was blocked or redacted. A redact rule now rewrites the
document's text and title (Claude gets a text document of the redacted text, an OpenAI-format
deployment the redacted file part), a block rule blocks; a PDF (bytes, no text) goes as it
came. The chat API's text files (any `text/*` data URL of UTF-8) are screened the same way."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.conftest import Guarded
from tests.e2e.test_anthropic_sdk import config
from tests.e2e.test_guardrails_sdk import AWS_KEY, GUARDRAILS

pytestmark = pytest.mark.timeout(60)


def _text_doc(text: str, title: str = "Notes") -> Any:
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": text},
        "title": title,
    }


def _ask(document: Any) -> list[Any]:
    return [{"role": "user", "content": [document, {"type": "text", "text": "summarise"}]}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`sonnet`: Claude; `chain`: OpenAI-format servers; both under GUARDRAILS."""
    return await start_router(config(fake, guardrails=GUARDRAILS))


def _sent_part(fake: FakeUpstream) -> Any:
    sent = fake.state.last()
    assert sent is not None
    return sent.body["messages"][0]["content"][0]


def _file_text(part: Any) -> str:
    header, _, data = part["file"]["file_data"].partition(",")
    assert header == "data:text/plain;base64"
    return base64.b64decode(data).decode()


async def test_a_redact_rule_rewrites_a_text_documents_text(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    doc = _text_doc("Write to bob@example.com today.", "From bob@example.com")
    raw = await claude.messages.with_raw_response.create(
        model="sonnet", max_tokens=64, messages=_ask(doc)
    )
    assert "pii" in raw.headers.get("x-switchboard-guardrails", "")
    redacted = "Write to [REDACTED:email] today."
    assert _sent_part(fake) == _text_doc(redacted, "From [REDACTED:email]")
    await claude.messages.create(model="chain", max_tokens=64, messages=_ask(doc))
    part = _sent_part(fake)
    assert part["type"] == "file" and part["file"]["filename"] == "From [REDACTED:email]"
    assert _file_text(part) == redacted


@pytest.mark.parametrize("stream", [False, True])
async def test_a_block_rule_blocks_a_text_document_with_a_secret(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    request: Any = {"model": "sonnet", "max_tokens": 64, "stream": stream}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(**request, messages=_ask(_text_doc(f"key {AWS_KEY}")))
    assert "no-credentials" in caught.value.response.text
    assert AWS_KEY not in caught.value.response.text
    assert fake.state.calls() == []


async def test_a_pdf_goes_as_it_came(claude: anthropic.AsyncAnthropic, fake: FakeUpstream) -> None:
    """A binary document is no text: its bytes are not screened (nor rewritten)."""
    pdf = base64.b64encode(b"%PDF-1.4 bob@example.com").decode()
    source = {"type": "base64", "media_type": "application/pdf", "data": pdf}
    doc = {"type": "document", "source": source}
    await claude.messages.create(model="sonnet", max_tokens=64, messages=_ask(doc))
    assert _sent_part(fake) == doc


async def test_the_chat_apis_text_file_is_screened(
    guarded_sdk: Guarded, fake: FakeUpstream
) -> None:
    """A markdown file part (the OpenAI SDK's chat API): redacted in place, its media type kept;
    one whose bytes are no UTF-8 text goes as it came."""
    _, sdk = await guarded_sdk(GUARDRAILS)

    def file(media_type: str, data: bytes) -> Any:
        url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
        return {"type": "file", "file": {"file_data": url, "filename": "n.md"}}

    binary = file("text/markdown", b"\xff\xfe bob@example.com")
    content: Any = [file("text/markdown", b"# mail bob@example.com"), binary]
    await sdk.chat.completions.create(
        model="chain", messages=[{"role": "user", "content": content}]
    )
    [markdown, sent_binary] = _sent_part_list(fake)
    assert markdown == file("text/markdown", b"# mail [REDACTED:email]")
    assert sent_binary == binary
    with pytest.raises(openai.BadRequestError) as caught:
        content = [file("text/plain", f"key {AWS_KEY}".encode())]
        await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": content}]
        )
    body: Any = caught.value.body
    assert body["param"] == "messages[0].content[0].file.file_data"


def _sent_part_list(fake: FakeUpstream) -> list[Any]:
    sent = fake.state.last()
    assert sent is not None
    parts: list[Any] = sent.body["messages"][0]["content"]
    return parts
