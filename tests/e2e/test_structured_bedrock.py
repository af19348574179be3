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
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_reasoning_sdk import HELLO, config, received

NOVA = "amazon.nova-pro-v1:0"

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


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    with_group = config(fake)
    nova_then_gpt = [{"provider": "br", "model": NOVA}, {"provider": "alpha", "model": "model-a"}]
    with_group["models"]["nova-then-gpt"] = {"deployments": nova_then_gpt}
    return await start_router(with_group)


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", ["br-nova", "br-claude"])
async def test_json_mode_is_a_400_at_bedrock_not_dropped(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, streaming: bool
) -> None:
    """Converse's one format type is `json_schema`, whose objects must each say
    `additionalProperties: false`: no schema lets any JSON object through, so JSON mode
    cannot be said there, and answering unconstrained text would break a caller that parses
    it. Nothing is sent; the caller hears a 400 naming `response_format`."""
    with pytest.raises(openai.BadRequestError) as raised:
        answer: Any = await sdk.chat.completions.create(
            model=model, messages=HELLO, response_format={"type": "json_object"}, stream=streaming
        )
        async for _ in answer:
            pass

    assert raised.value.param == "response_format"
    assert "json_object" in raised.value.message
    assert fake.state.count() == 0


async def test_json_mode_passes_a_bedrock_deployment_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="nova-then-gpt", messages=HELLO, response_format={"type": "json_object"}
    )

    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert [c.model for c in fake.state.calls()] == ["model-a"]


async def test_json_mode_beside_the_callers_own_output_config_sends_that(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A caller's own `outputConfig` is sent as written, whatever `response_format` says: JSON
    mode beside it is no reason to pass the deployment over."""
    own = {
        "textFormat": {
            "type": "json_schema",
            "structure": {"jsonSchema": {"name": "place", "schema": orjson.dumps(SCHEMA).decode()}},
        }
    }
    raw = await sdk.chat.completions.with_raw_response.create(
        model="nova-then-gpt",
        messages=HELLO,
        response_format={"type": "json_object"},
        extra_body={"outputConfig": own},
    )

    assert raw.headers["x-switchboard-deployment"] == f"br/{NOVA}"
    assert received(fake)["outputConfig"] == own
