"""A chat deployment at OpenAI itself (Azure here; api.openai.com by its host) is called on the
Responses API for a request with a hosted tool or a hosted item handed back, and on chat
completions for any other; another OpenAI-compatible server is still left out, and so is a
deployment whose `api: chat` the operator set."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from clients.switchboard.v1 import chat_pb2
from router_service.clock import SYSTEM_CLOCK
from router_service.engine import RequestContext
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config

WEB_SEARCH: Any = {"type": "web_search"}
HELLO: Any = [{"role": "user", "content": "weather in Paris"}]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["providers"] |= {
        "az": {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]},
        "oa": {"base_url": "https://api.openai.com/v1", "keys": ["sk-oa"]},
        "oa-eu": {"base_url": "https://eu.api.openai.com/v1", "keys": ["sk-oa-eu"]},
    }
    out["models"] |= {
        "mixed": {
            "deployments": [
                {"provider": "beta", "model": "vllm-chat"},  # another compatible server
                {"provider": "az", "model": "gpt-4o-az"},
            ]
        },
        "pinned": {"deployments": [{"provider": "az", "model": "gpt-4o-pinned", "api": "chat"}]},
        "at-openai": {"deployments": [{"provider": "oa", "model": "gpt-4.1"}]},
        "at-openai-eu": {"deployments": [{"provider": "oa-eu", "model": "gpt-4.1"}]},
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


async def test_a_chat_deployment_at_azure_takes_hosted_tools_on_the_responses_api(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    response = await sdk.responses.create(model="mixed", input="weather", tools=[WEB_SEARCH])

    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert fake.state.calls(model="vllm-chat") == []
    (record,) = fake.state.calls(model="gpt-4o-az")
    assert record.path == "/openai/v1/responses" and record.body["tools"] == [WEB_SEARCH]

    completion = await sdk.chat.completions.create(
        model="mixed", messages=HELLO, tools=[WEB_SEARCH]
    )
    assert completion.choices[0].message.content == "Paris is sunny."
    assert fake.state.calls(model="gpt-4o-az")[-1].path == "/openai/v1/responses"


async def test_without_a_hosted_tool_it_stays_on_chat_completions(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Hello."))
    fake.state.set_scenario(Scenario(status=500), model="vllm-chat")  # on to the next
    await sdk.chat.completions.create(model="mixed", messages=HELLO)

    (record,) = fake.state.calls(model="gpt-4o-az")
    assert record.path.endswith("/chat/completions")


async def test_a_hosted_item_handed_back_goes_there_too(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Done."))
    output = {"type": "local_shell_call_output", "id": "call_1", "output": "{}"}
    handed: Any = [{"role": "user", "content": "ls"}, output]
    await sdk.responses.create(model="mixed", input=handed)

    assert fake.state.calls(model="vllm-chat") == []
    (record,) = fake.state.calls(model="gpt-4o-az")
    assert record.path == "/openai/v1/responses" and record.body["input"][1] == output


async def test_an_operators_api_chat_is_kept(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="pinned", input="weather", tools=[WEB_SEARCH])

    assert caught.value.param == "tools[0].type"
    assert fake.state.calls(model="gpt-4o-pinned") == []


@pytest.mark.parametrize("group", ["at-openai", "at-openai-eu"])  # EU data residency too
async def test_a_chat_deployment_at_api_openai_com_is_planned_on_the_responses_api(
    router: RouterHandle, group: str
) -> None:
    planner = router.runtime.planner
    params = chat_pb2.ChatParams(tools=[chat_pb2.Tool(type="web_search")])
    plan = await planner.plan_chat(RequestContext(group, SYSTEM_CLOCK), params)
    assert [d.api for d in plan.candidates] == ["responses"]

    plain = await planner.plan_chat(RequestContext(group, SYSTEM_CLOCK), chat_pb2.ChatParams())
    assert [d.api for d in plain.candidates] == ["chat"]
