"""Structured outputs at a Bedrock deployment: Converse says them as `outputConfig.textFormat`
(a `json_schema` whose schema travels as a JSON string). An Anthropic caller's
`output_config.format` (the Messages entrance reads it as `response_format`) and an OpenAI
caller's `response_format` both reach it there, not dropped without a word."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_reasoning_sdk import HELLO, received, router  # noqa: F401

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


def text_format(fake: FakeUpstream) -> Any:
    body = received(fake)
    assert "response_format" not in body.get("additionalModelRequestFields", {}), body
    return body["outputConfig"]["textFormat"]


@pytest.mark.parametrize("model", ["br-claude", "br-nova"])
async def test_an_anthropic_callers_output_format_reaches_converse(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    config: Any = {"format": {"type": "json_schema", "schema": SCHEMA}}
    await claude.messages.create(model=model, max_tokens=64, messages=HELLO, output_config=config)

    sent = text_format(fake)
    assert sent["type"] == "json_schema"
    assert orjson.loads(sent["structure"]["jsonSchema"]["schema"]) == SCHEMA


async def test_an_openai_callers_response_format_reaches_converse(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="br-nova",
        messages=HELLO,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "place", "schema": SCHEMA, "strict": True},
        },
    )

    sent = text_format(fake)
    assert sent["structure"]["jsonSchema"]["name"] == "place"
    assert orjson.loads(sent["structure"]["jsonSchema"]["schema"]) == SCHEMA
