"""A Responses `input_file` the caller named but did not type (bare base64, or a link) through
the edge's `/v1/responses` to a Gemini deployment, which needs its media type: the type its
name says by the router's own table, the same on every host (the host's table, when it was
read, called a Go file nothing, so a PDF; TypeScript a Qt translation; Rust an XML). Source
of no type upstreams take is plain text."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conformance.profiles import BY_KIND
from tests.conftest import RouterHandle, StartRouter, base_config

SOURCE = base64.b64encode(b"package main\n").decode()
TYPED = {
    "main.go": "text/plain",
    "app.ts": "text/x-typescript",
    "lib.rs": "text/plain",
    "rows.jsonl": "text/plain",
    "deploy.yaml": "text/plain",
    "notes.md": "text/markdown",
    "report.pdf": "application/pdf",
    "page.HTML": "text/html",
    "script.py": "text/x-python",
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"]["gemini-p"] = BY_KIND["gemini"].provider(fake, ["k-1"])
    config["models"]["gemini"] = {"deployments": [{"provider": "gemini-p", "model": "g-up"}]}
    return await start_router(config)


@pytest.mark.parametrize("given", ["file_data", "file_url"])
async def test_a_named_file_is_of_the_type_its_name_says(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, given: str
) -> None:
    files: list[Any] = [
        {"type": "input_file", "filename": name, "file_data": SOURCE}
        if given == "file_data"
        else {"type": "input_file", "file_url": f"https://files.example/{name}?v=1"}
        for name in TYPED
    ]
    content: Any = [{"type": "input_text", "text": "read these"}, *files]
    await sdk.responses.create(model="gemini", input=[{"role": "user", "content": content}])
    parts = fake.state.calls()[-1].body["contents"][-1]["parts"][1:]
    key = "inlineData" if given == "file_data" else "fileData"
    assert [part[key]["mimeType"] for part in parts] == list(TYPED.values()), parts
