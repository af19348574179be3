"""An image a tool returned, from the openai SDK and from google-genai, through the edge and the
router to the fake upstream: inside Gemini 3's functionResponse, refused by Cohere (its tool
messages carry text only) for the group's next deployment, a 400 when no deployment takes it."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config

PNG = b"\x89PNG\r\n\x1a\n"
DATA = base64.b64encode(PNG).decode()
CALL: Any = {"id": "call_1", "type": "function", "function": {"name": "snap", "arguments": "{}"}}
TOOL: Any = [{"type": "function", "function": {"name": "snap", "parameters": {"type": "object"}}}]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["providers"] |= {
        "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]},
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
    }
    gemini_3 = {"provider": "gem", "model": "gemini-3-pro-preview"}
    command = {"provider": "co", "model": "command-a"}
    out["models"] |= {
        "g3": {"deployments": [gemini_3]},
        "command": {"deployments": [command]},
        "command-then-g3": {"deployments": [command, gemini_3]},
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def messages() -> Any:
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{DATA}"}}
    return [
        {"role": "user", "content": "what is on screen?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": [{"type": "text", "text": '{"ok": true}'}, image],
        },
    ]


def function_response(fake: FakeUpstream) -> dict[str, Any]:
    sent = fake.state.last()
    assert sent is not None
    part = sent.body["contents"][-1]["parts"][0]
    return dict(part["functionResponse"])


@pytest.mark.parametrize("model", ["g3", "command-then-g3"])
async def test_the_image_reaches_gemini_inside_its_function_response(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model=model, messages=messages(), tools=TOOL
    )

    assert raw.headers["x-switchboard-deployment"] == "gem/gemini-3-pro-preview"
    response = function_response(fake)
    assert response["response"] == {"ok": True}
    assert response["parts"] == [{"inlineData": {"mimeType": "image/png", "data": DATA}}]
    assert fake.state.count() == 1  # Cohere passed over, never called


async def test_no_deployment_taking_it_is_a_400_naming_the_part(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="command", messages=messages(), tools=TOOL)

    assert "cohere takes a tool result's text only" in refused.value.message
    assert fake.state.count() == 0


async def test_a_gemini_callers_multimodal_function_response_reaches_gemini(
    gemini: genai.Client, fake: FakeUpstream
) -> None:
    blob = types.FunctionResponseBlob(mime_type="image/png", data=PNG)
    result = types.Part.from_function_response(
        name="snap", response={"ok": True}, parts=[types.FunctionResponsePart(inline_data=blob)]
    )
    call = types.Part(function_call=types.FunctionCall(name="snap", args={}))
    contents = [
        types.Content(role="user", parts=[types.Part(text="what is on screen?")]),
        types.Content(role="model", parts=[call]),
        types.Content(role="user", parts=[result]),
    ]
    snap = types.FunctionDeclaration(name="snap", parameters=types.Schema(type=types.Type.OBJECT))
    settings = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[snap])])

    await gemini.aio.models.generate_content(model="g3", contents=contents, config=settings)

    response = function_response(fake)
    assert (response["name"], response["response"]) == ("snap", {"ok": True})
    assert response["parts"] == [{"inlineData": {"mimeType": "image/png", "data": DATA}}]
