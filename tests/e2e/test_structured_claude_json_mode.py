"""JSON mode (`response_format` `json_object`) at Claude (kinds `anthropic` and `vertex` with
`publisher: anthropic`): the Messages API's structured outputs take a `json_schema` whose
objects each say `additionalProperties: false`, so no schema lets any JSON object through and
JSON mode has no word there, as at Bedrock's Converse. The deployment is passed over
(UNSUPPORTED_INPUT): the group's next deployment answers, and a caller whose group has none
hears a 400 naming `response_format`, never unconstrained text it would fail to parse."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_reasoning_sdk import HELLO, received, router  # noqa: F401

JSON_MODE: Any = {"type": "json_object"}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", ["sonnet", "vx-sonnet"])
async def test_json_mode_is_a_400_at_claude_not_dropped(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, streaming: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        answer: Any = await sdk.chat.completions.create(
            model=model, messages=HELLO, response_format=JSON_MODE, stream=streaming
        )
        async for _ in answer:
            pass

    assert raised.value.param == "response_format"
    assert "json_object" in raised.value.message
    assert fake.state.count() == 0


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_json_mode_passes_a_claude_deployment_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="claude-then-gpt", messages=HELLO, response_format=JSON_MODE, stream=streaming
    )

    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    answer: Any = raw.parse()
    if streaming:
        async for _ in answer:
            pass
    assert [c.model for c in fake.state.calls()] == ["model-a"]


@pytest.mark.parametrize("model", ["sonnet", "vx-sonnet"])
async def test_json_mode_beside_the_callers_own_output_format_sends_that(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    """A caller's own `output_config.format` (structured outputs, written for Claude) is sent
    as written: JSON mode beside it is no reason to pass the deployment over."""
    own = {"format": {"type": "json_schema", "schema": SCHEMA}}
    await sdk.chat.completions.create(
        model=model, messages=HELLO, response_format=JSON_MODE, extra_body={"output_config": own}
    )

    assert received(fake)["output_config"] == own
