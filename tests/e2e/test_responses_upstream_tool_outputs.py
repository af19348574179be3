"""A tool's output with an image (a screenshot tool's) reaches a deployment on the Responses API
as the parts OpenAI's Responses API takes in a `function_call_output` (`input_text`,
`input_image`), not as its text alone, whichever entrance the caller came by."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_responses_upstream import config, sent

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwAD"
    "hgGAWjR9awAAAABJRU5ErkJggg=="
)
TOOL: Any = {"type": "function", "name": "screenshot", "parameters": {"type": "object"}}
CALL: Any = {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": "{}"}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


async def test_an_image_in_a_tool_output_reaches_the_responses_api(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    seen: Any = [
        {"type": "input_text", "text": "the page"},
        {"type": "input_image", "image_url": PNG},
    ]
    output = {"type": "function_call_output", "call_id": "c1", "output": seen}
    items: Any = [{"role": "user", "content": "look at the page"}, CALL, output]
    answer = await sdk.responses.create(model="house", input=items, tools=[TOOL])

    assert answer.status == "completed"
    sent_output = sent(fake, "house-reasoner").body["input"][-1]
    assert sent_output == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": [
            {"type": "input_text", "text": "the page"},
            {"type": "input_image", "image_url": PNG, "detail": "auto"},
        ],
    }


async def test_a_text_tool_output_stays_a_string(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    text: Any = [{"type": "input_text", "text": "4"}, {"type": "input_text", "text": "2"}]
    output = {"type": "function_call_output", "call_id": "c1", "output": text}
    items: Any = [{"role": "user", "content": "count"}, CALL, output]
    await sdk.responses.create(model="house", input=items, tools=[TOOL])

    assert sent(fake, "house-reasoner").body["input"][-1]["output"] == "42"
