"""A chat caller's `None` (JSON null) to a Gemini deployment is unset, as OpenAI reads it:
no null reaches Gemini's body, and a null in the caller's own `generationConfig` leaves the
mapped value in place."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config

HELLO: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = base_config(fake.base_url)
    config["providers"]["gem"] = {
        "kind": "gemini",
        "base_url": f"{fake.url}/v1beta",
        "keys": ["g-key"],
    }
    config["models"]["gemini"] = {"deployments": [{"provider": "gem", "model": "gemini-2.5-flash"}]}
    return await start_router(config)


def nulls(value: Any, path: str = "") -> list[str]:
    """The paths of the nulls in `value`."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


async def test_nulls_are_unset_at_gemini(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    own = {"temperature": None, "topK": None, "thinkingConfig": {"thinkingBudget": None}}
    await sdk.chat.completions.create(
        model="gemini",
        messages=HELLO,
        temperature=None,
        top_p=None,
        seed=None,
        presence_penalty=None,
        frequency_penalty=None,
        max_tokens=20,
        extra_body={"top_k": None, "generationConfig": own, "safetySettings": None},
    )
    sent = fake.state.last()
    assert sent is not None
    assert nulls(sent.body) == []
    assert sent.body["generationConfig"] == {"maxOutputTokens": 20}


async def test_a_null_generation_config_is_unset(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="gemini", messages=HELLO, extra_body={"generationConfig": None}
    )
    sent = fake.state.last()
    assert sent is not None
    assert "generationConfig" not in sent.body


async def test_a_null_in_the_callers_own_config_keeps_the_mapped_value(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="gemini",
        messages=HELLO,
        temperature=0.5,
        extra_body={"generationConfig": {"temperature": None, "topK": 3}},
    )
    sent = fake.state.last()
    assert sent is not None
    assert sent.body["generationConfig"] == {"temperature": 0.5, "topK": 3}
