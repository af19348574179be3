"""Google's `extra_body.google.thinking_config` (what Google's OpenAI-compatible endpoint takes,
with the openai SDK `extra_body={"extra_body": {"google": {...}}}`) is one more way to ask the
reasoning knob: each kind gets its own knob from it and no upstream but Google's endpoint gets
`extra_body` itself."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.engine._reasoning_off import without_reasoning
from router_service.fake_upstream import FakeUpstream
from router_service.fake_upstream._gemini import THOUGHTS
from tests.conftest import RouterHandle, StartRouter
from tests.e2e import test_reasoning_sdk as reasoning
from tests.e2e.test_reasoning_exclude import bodies_at

HELLO: Any = [{"role": "user", "content": "hello"}]
GOOGLE_URL = "https://generativelanguage.googleapis.com/v1beta/openai"
VERTEX_URL = "https://aiplatform.googleapis.com/v1/projects/p/locations/global/endpoints/openapi"
SHOWN = {"includeThoughts": True}


def google(**config: Any) -> dict[str, Any]:
    """The openai SDK's `extra_body` for Google's thinking_config (Google's docs' shape)."""
    return {"extra_body": {"google": {"thinking_config": config}}}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(reasoning.config(fake))


@pytest.mark.parametrize(
    ("model", "path", "knob"),
    [
        ("gpt", ("reasoning_effort",), "low"),
        ("gemini", ("generationConfig", "thinkingConfig"), {"thinkingBudget": 800, **SHOWN}),
        ("sonnet", ("thinking",), {"type": "enabled", "budget_tokens": 1024}),
        ("command", ("thinking",), {"type": "enabled", "token_budget": 1024}),
    ],
)  # fmt: skip
async def test_a_thinking_budget_becomes_each_kinds_knob(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, path: tuple[str, ...], knob: Any
) -> None:
    extra = google(thinking_budget=800, include_thoughts=True)
    await sdk.chat.completions.create(
        model=model, messages=HELLO, max_tokens=4000, extra_body=extra
    )

    body = reasoning.received(fake)
    assert "extra_body" not in body
    for key in path:
        body = body[key]
    assert body == knob


@pytest.mark.parametrize(
    ("config", "effort", "budget"),
    [
        ({"thinking_level": "high"}, "high", {"thinkingBudget": 24576, "includeThoughts": True}),
        ({"thinking_level": "LOW"}, "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ({"thinking_budget": 0}, "none", {"thinkingBudget": 0}),
        ({"thinking_budget": -1}, "medium", {"includeThoughts": True}),  # as `enabled: true`
    ],
)
async def test_a_level_or_an_off_or_dynamic_budget(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, config: Any, effort: Any, budget: Any
) -> None:
    await sdk.chat.completions.create(model="gpt", messages=HELLO, extra_body=google(**config))
    assert reasoning.received(fake).get("reasoning_effort") == effort
    await sdk.chat.completions.create(model="gemini", messages=HELLO, extra_body=google(**config))
    assert reasoning.received(fake)["generationConfig"]["thinkingConfig"] == budget


async def test_include_thoughts_false_hides_the_reasoning(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    shown = await sdk.chat.completions.create(
        model="gemini", messages=HELLO, extra_body=google(thinking_budget=1024)
    )
    hidden = await sdk.chat.completions.create(
        model="gemini",
        messages=HELLO,
        extra_body=google(thinking_budget=1024, include_thoughts=False),
    )

    assert (shown.choices[0].message.model_extra or {})["reasoning_content"] == THOUGHTS
    assert "reasoning_content" not in (hidden.choices[0].message.model_extra or {})
    assert hidden.choices[0].message.content == "Echo: hello"


async def test_google_only_keys_are_not_sent_elsewhere(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """`cached_content` names a cache only Google's API has: left out, not refused."""
    extra = {"extra_body": {"google": {"cached_content": "cachedContents/abc"}, "other": 1}}
    for model in ("gpt", "gemini", "sonnet"):
        answer = await sdk.chat.completions.create(model=model, messages=HELLO, extra_body=extra)
        assert answer.choices[0].message.content
        body = reasoning.received(fake)
        assert "extra_body" not in body and "reasoning_effort" not in body


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (google(thinking_level="extreme"), "extra_body.google.thinking_config.thinking_level"),
        (google(thinking_budget="800"), "extra_body.google.thinking_config.thinking_budget"),
        (google(thinking_budget=-2), "extra_body.google.thinking_config.thinking_budget"),
        (google(thinking_budget=8, thinking_level="low"), "extra_body.google.thinking_config"),
        (google(include_thoughts="yes"), "extra_body.google.thinking_config.include_thoughts"),
        ({"extra_body": {"google": {"thinking_config": 5}}}, "extra_body.google.thinking_config"),
        ({"extra_body": {"google": "x"}}, "extra_body.google"),
    ],
)
async def test_a_malformed_thinking_config_is_a_400_naming_the_field(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, extra: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="gpt", messages=HELLO, extra_body=extra)

    assert refused.value.param == param
    assert fake.state.last() is None


async def test_googles_own_endpoint_takes_extra_body_as_it_is() -> None:
    """Google's OpenAI-compatible endpoint (by its base_url) gets `extra_body` unchanged and no
    `reasoning_effort` made from it (it refuses both); another OpenAI-format upstream gets the
    effort and no `extra_body`."""
    extra = {"extra_body": {"google": {"thinking_config": {"thinking_budget": 3000}, "c": 1}}}
    urls = (GOOGLE_URL, "https://api.openai.com/v1")
    at_google, at_openai = await bodies_at(urls, "gemini-2.5-flash", extra)
    assert at_google["extra_body"] == extra["extra_body"] and "reasoning_effort" not in at_google
    assert "extra_body" not in at_openai and at_openai["reasoning_effort"] == "medium"


def test_a_deployment_without_reasoning_loses_only_the_thinking_config() -> None:
    extra = {"extra_body": {"google": {"thinking_config": {"thinking_budget": 10}, "c": 1}}}
    params = chat_pb2.ChatParams(extra_json=orjson.dumps(extra).decode())

    sent = without_reasoning(params)

    assert orjson.loads(sent.extra_json) == {"extra_body": {"google": {"c": 1}}}
    alone = chat_pb2.ChatParams(extra_json=orjson.dumps(google(thinking_budget=10)).decode())
    assert without_reasoning(alone).extra_json == ""


async def test_an_openrouter_deployment_gets_the_effort_of_googles_thinking_config() -> None:
    """OpenRouter takes its own object natively, but a caller that sent only Google's
    thinking_config asked all the same: OpenRouter gets its effort (not `extra_body`)."""
    extra = google(thinking_level="high")
    [at_openrouter] = await bodies_at(("https://openrouter.ai/api/v1",), "openai/o3", extra)
    assert at_openrouter["reasoning_effort"] == "high" and "extra_body" not in at_openrouter


async def test_googles_endpoint_gets_no_effort_from_thinking_beside_its_own_knob() -> None:
    """Anthropic's `thinking` beside Google's thinking_config: Google's own knob wins at its
    endpoint, which refuses a `reasoning_effort` beside it."""
    extra = {"thinking": {"type": "enabled", "budget_tokens": 2048}, **google(thinking_budget=9)}
    [at_google] = await bodies_at((GOOGLE_URL,), "gemini-2.5-flash", extra)
    assert "reasoning_effort" not in at_google and "thinking" not in at_google
    assert at_google["extra_body"] == extra["extra_body"]


def test_a_deployment_without_reasoning_loses_the_thinking_config_beside_another_knob() -> None:
    for knob in ({"reasoning_effort": "low"}, {"output_config": {"effort": "low"}}):
        extra = {**knob, **google(thinking_budget=10)}
        params = chat_pb2.ChatParams(extra_json=orjson.dumps(extra).decode())

        assert without_reasoning(params).extra_json == ""


async def test_vertex_ais_openai_compatible_endpoint_is_googles_too() -> None:
    """Vertex AI's OpenAI-compatible endpoint takes Google's `extra_body` as the Gemini API's
    does: it gets the caller's thinking_config as sent, and no effort beside it."""
    extra = google(thinking_budget=3000, include_thoughts=True)
    [at_vertex] = await bodies_at((VERTEX_URL,), "google/gemini-2.5-flash", extra)
    assert at_vertex["extra_body"] == extra["extra_body"] and "reasoning_effort" not in at_vertex
