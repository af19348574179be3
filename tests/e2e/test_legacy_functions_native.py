"""A legacy `function_call` that forces a call of a function not among the legacy `functions`
reaches no kind whose API has no such fields (Claude's Messages API, Gemini, Cohere, the
Responses API…): their mappings read `tools` alone, so there is no tool it could force (one of
the functions is forced as that tool: test_legacy_functions_as_tools). Such a deployment cannot
take the request (the group's next one may: OpenAI's chat API takes them, and answers); a 400
naming `function_call` when none can, as a forced `tool_choice` with nothing to call is
(`test_tools_absent_sdk`)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config

FN: Any = {"name": "f", "parameters": {"type": "object", "properties": {}}}
UNKNOWN: Any = {"name": "g"}  # forces a function the request does not declare
HELLO: Any = [{"role": "user", "content": "hello"}]
NATIVE = ["claude", "gemini", "cohere", "responses"]


def native_config(fake: FakeUpstream) -> dict[str, Any]:
    """A group per NATIVE kind on the fake, and `<kind>-then-gpt`: that deployment, then an
    OpenAI chat one (`alpha/model-a`)."""
    out = base_config(fake.base_url)
    out["providers"] |= {
        "ant": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]},
        "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]},
        "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
    }
    for name, provider in zip(NATIVE, ("ant", "gem", "co", "alpha"), strict=True):
        deployment = {"provider": provider, "model": f"{name}-x"}
        if name == "responses":  # OpenAI's Responses API: `tools` alone too
            deployment["api"] = "responses"
        out["models"][name] = {"deployments": [deployment]}
        out["models"][f"{name}-then-gpt"] = {
            "deployments": [deployment, {"provider": "alpha", "model": "model-a"}]
        }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(native_config(fake))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", NATIVE)
async def test_a_forced_legacy_call_is_refused_where_functions_cannot_go(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model=model, messages=HELLO, functions=[FN], function_call=UNKNOWN, stream=stream
        )
    assert caught.value.param == "function_call", caught.value
    assert fake.state.calls() == []


@pytest.mark.parametrize("model", NATIVE)
async def test_the_groups_next_deployment_takes_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    await sdk.chat.completions.create(
        model=f"{model}-then-gpt", messages=HELLO, functions=[FN], function_call=UNKNOWN
    )
    [call] = fake.state.calls()
    assert call.path.endswith("/chat/completions")
    assert (call.body["functions"], call.body["function_call"]) == ([FN], UNKNOWN)


@pytest.mark.parametrize("model", NATIVE)
async def test_functions_a_model_may_call_or_not_still_go(
    sdk: openai.AsyncOpenAI, model: str
) -> None:
    """Unforced (`auto`, `none`, or no `function_call`), nothing was asked for that a text
    answer fails: answered (the functions go as tools: test_legacy_functions_as_tools)."""
    for choice in ("auto", "none", None):
        extra: dict[str, Any] = {} if choice is None else {"function_call": choice}
        reply = await sdk.chat.completions.create(
            model=model, messages=HELLO, functions=[FN], **extra
        )
        assert reply.choices[0].message.content
