"""Guardrails beyond messages as an OpenAI SDK user sees them through the edge: a tool's
description and parameters schema reach the upstream redacted (chat completions and the
Responses API), a field passed through verbatim (`extra_body`) too, a credential in a tool
schema is a 400 naming the field, and a transcription whose text a block rule refuses is a 400
`content_policy_violation` naming the rule, never the text. The fake upstream transcribes a
file as "<filename>: <size> bytes of <type>"."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.conftest import Guarded

pytestmark = pytest.mark.timeout(60)

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane@example.com"
GUARDRAILS = [
    {"name": "no-credentials", "detect": ["api_key"], "action": "block"},
    {"name": "pii", "detect": ["email"], "action": "redact"},
    {"name": "answer-keys", "detect": ["api_key"], "action": "block", "apply_to": ["response"]},
    {"name": "answer-pii", "detect": ["email"], "action": "redact", "apply_to": ["response"]},
]
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": f"ask {EMAIL} if unsure"}},
}


@pytest.fixture
async def sdk(guarded_sdk: Guarded) -> openai.AsyncOpenAI:
    _, sdk = await guarded_sdk(GUARDRAILS)
    return sdk


def _sent_function(fake: FakeUpstream) -> Any:
    [call] = fake.state.calls()
    return call.body["tools"][0]["function"]


async def test_a_tool_definition_reaches_the_upstream_redacted(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    tool: Any = {
        "type": "function",
        "function": {"name": "weather", "description": f"by {EMAIL}", "parameters": PARAMETERS},
    }
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain", messages=[{"role": "user", "content": "weather?"}], tools=[tool]
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    function = _sent_function(fake)
    assert function["description"] == "by [REDACTED:email]"
    city = function["parameters"]["properties"]["city"]
    assert city == {"type": "string", "description": "ask [REDACTED:email] if unsure"}
    fake.state.reset()
    await sdk.responses.create(
        model="chain",
        input="weather?",
        store=False,
        tools=[{"type": "function", "name": "weather", "parameters": PARAMETERS, "strict": False}],
    )
    city = _sent_function(fake)["parameters"]["properties"]["city"]
    assert city["description"] == "ask [REDACTED:email] if unsure"


async def test_a_pass_through_field_and_a_blocked_schema(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="chain",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"prediction": {"type": "content", "content": f"to {EMAIL}"}},
    )
    assert raw.headers["x-switchboard-guardrails"] == "pii"
    [call] = fake.state.calls()
    assert call.body["prediction"] == {"type": "content", "content": "to [REDACTED:email]"}
    leaky: Any = {"type": "object", "properties": {"k": {"type": "string", "default": AWS_KEY}}}
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="chain",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": leaky}}],
        )
    body: Any = caught.value.body
    assert body["code"] == "content_policy_violation"
    assert body["param"] == "tools[0].function.parameters.properties.k.default"
    assert AWS_KEY not in caught.value.response.text
    assert len(fake.state.calls()) == 1


async def test_a_transcript_is_redacted_or_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = await sdk.audio.transcriptions.with_raw_response.create(
        model="chain", file=(f"{EMAIL}.wav", b"RIFF0000", "audio/wav")
    )
    assert raw.headers["x-switchboard-guardrails"] == "answer-pii"
    assert raw.parse().text == "[REDACTED:email]: 8 bytes of audio/wav"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.audio.transcriptions.create(
            model="chain", file=(f"{AWS_KEY}.wav", b"RIFF0000", "audio/wav"), response_format="srt"
        )
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["type"] == "invalid_request_error"
    assert body["code"] == "content_policy_violation" and body["param"] is None
    assert body["message"] == (
        "The answer was withheld by the guardrail 'answer-keys' (detector: api_key) in `text`."
    )
    assert AWS_KEY not in caught.value.response.text
    assert len(fake.state.calls()) == 2
    for record in caplog.records:
        assert AWS_KEY not in f"{record.getMessage()} {record.__dict__}"
