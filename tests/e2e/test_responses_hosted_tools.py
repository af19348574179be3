"""OpenAI's hosted tools (web search, local shell, MCP) through the edge's Responses API: the
real openai SDK calls a group of a Responses API deployment, which gets the tools as sent, and
the hosted items and events it answers come back intact, unary and streamed (typed by the SDK);
a second turn hands a `local_shell_call_output` back. A group without such a deployment is a
400 naming the tool; a group whose first deployment cannot carry them skips it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_hosted import CITED_URL, MCP_OUTPUT, SHELL_COMMAND
from router_service.fake_upstream._state import CallRecord
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.background import settled

WEB_SEARCH: Any = {"type": "web_search", "search_context_size": "low"}
CITATION: Any = {
    "type": "url_citation",
    "start_index": 0,
    "end_index": len("Paris is sunny."),
    "url": CITED_URL,
    "title": "Fake source",
}
MCP: Any = {
    "type": "mcp",
    "server_label": "dice",
    "server_url": "https://dice.example.com/mcp",
    "require_approval": "never",
}


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    # An OpenAI-compatible server that runs a hosted tool on its chat API (Groq's).
    runner = {"base_url": fake.base_url, "keys": ["sk-run"], "hosted_tools": ["code_interpreter"]}
    out["providers"]["runner"] = runner
    out["models"] |= {
        "hosted": {
            "deployments": [{"provider": "alpha", "model": "gpt-hosted", "api": "responses"}]
        },
        "chat-only": {"deployments": [{"provider": "alpha", "model": "gpt-chat"}]},
        "groq-like": {
            "deployments": [
                {"provider": "runner", "model": "gpt-oss-runner"},
                {"provider": "alpha", "model": "gpt-hosted-3", "api": "responses"},
            ]
        },
        "fallback": {
            "deployments": [
                {"provider": "beta", "model": "compatible-first"},
                {"provider": "alpha", "model": "gpt-hosted-2", "api": "responses"},
            ]
        },
    }
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def sent(fake: FakeUpstream, model: str = "gpt-hosted") -> CallRecord:
    record = fake.state.calls(model=model)[-1]
    assert record.path == "/v1/responses"
    return record


async def test_web_search_unary(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    response = await sdk.responses.create(
        model="hosted", input="weather in Paris", tools=[WEB_SEARCH], tool_choice="auto"
    )

    assert sent(fake).body["tools"] == [WEB_SEARCH]
    call, message = response.model_dump(exclude_none=True)["output"]
    assert call["type"] == "web_search_call" and call["status"] == "completed"
    assert call["action"] == {"type": "search", "query": "weather in Paris"}
    assert message["type"] == "message" and response.output_text == "Paris is sunny."
    assert message["content"][0]["annotations"] == [CITATION]


async def test_web_search_streamed(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    stream = await sdk.responses.create(
        model="hosted", input="weather in Paris", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    kinds = [event.type for event in events]
    searched = [k for k in kinds if k.startswith("response.web_search_call.")]
    assert searched == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    (added,) = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added.model_dump(exclude_none=True)["annotation"] == CITATION
    final = events[-1]
    assert final.type == "response.completed"
    call, message = final.response.model_dump(exclude_none=True)["output"]
    assert call["type"] == "web_search_call" and call["id"].startswith("ws_")
    searching = [e.model_dump() for e in events if e.type.startswith("response.web_search")]
    assert [e["output_index"] for e in searching] == [0] * 3
    assert message["content"][0]["annotations"] == [CITATION]
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))


async def test_local_shell_two_turns(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Listed."))
    tools: Any = [{"type": "local_shell"}]
    first = await sdk.responses.create(model="hosted", input="list files", tools=tools, store=False)
    (call,) = first.output
    assert call.type == "local_shell_call" and call.action.command == SHELL_COMMAND
    assert first.status == "completed"

    output = {"type": "local_shell_call_output", "id": call.call_id, "output": '{"stdout": "a"}'}
    handed: Any = [
        {"role": "user", "content": "list files"},
        call.model_dump(exclude_none=True),
        output,
    ]
    second = await sdk.responses.create(model="hosted", input=handed, tools=tools, store=False)

    assert second.output_text == "Listed."
    items = sent(fake).body["input"]
    assert items[1:] == [call.model_dump(exclude_none=True), output]


async def test_mcp_streamed(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="You rolled 4."))
    async with sdk.responses.stream(model="hosted", input="roll", tools=[MCP]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()

    assert "response.mcp_call_arguments.delta" in kinds
    assert "response.mcp_call.completed" in kinds
    call = final.output[0]
    assert call.type == "mcp_call" and call.output == MCP_OUTPUT and call.server_label == "dice"
    assert final.output_text == "You rolled 4."
    assert sent(fake).body["tools"] == [MCP]


async def test_refused_where_no_deployment_carries_them(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chat-only", input="hi", tools=[WEB_SEARCH])

    assert "web_search" in caught.value.message and "Responses API" in caught.value.message
    assert caught.value.param == "tools[0].type"
    assert fake.state.calls(model="gpt-chat") == []


async def test_fallback_skips_what_cannot_carry_them(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Sunny."))
    response = await sdk.responses.create(model="fallback", input="weather", tools=[WEB_SEARCH])

    assert response.output[0].type == "web_search_call"
    assert fake.state.calls(model="compatible-first") == []
    assert sent(fake, "gpt-hosted-2").body["tools"] == [WEB_SEARCH]


async def test_items_handed_back_are_refused_where_none_carries_them(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    output = {"type": "local_shell_call_output", "id": "call_1", "output": "{}"}
    handed: Any = [{"role": "user", "content": "list files"}, output]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chat-only", input=handed)

    assert "local_shell_call_output" in caught.value.message
    assert caught.value.param == "input"
    assert fake.state.calls(model="gpt-chat") == []


async def test_a_chat_caller_gets_the_hosted_items_on_the_message(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    tools: Any = [WEB_SEARCH]
    messages: Any = [{"role": "user", "content": "weather in Paris"}]
    completion = await sdk.chat.completions.create(model="hosted", messages=messages, tools=tools)

    message = completion.choices[0].message.model_dump()
    assert message["content"] == "Paris is sunny."
    (call,) = message["hosted_items"]
    assert call["type"] == "web_search_call" and call["precedes"] == 0
    (annotation,) = message["annotations"]
    assert annotation["url_citation"]["url"] == CITED_URL
    assert sent(fake).body["tools"] == [WEB_SEARCH]


async def test_a_stored_answer_continues_with_its_hosted_items(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    first = await sdk.responses.create(model="hosted", input="weather?", tools=[WEB_SEARCH])
    fake.state.set_scenario(Scenario(content="You are welcome."))
    await sdk.responses.create(model="hosted", input="thanks", previous_response_id=first.id)

    items = sent(fake).body["input"]
    assert [item.get("type") for item in items] == [
        "message",
        "web_search_call",
        "message",
        "message",
    ]
    assert items[1] == first.output[0].model_dump(exclude_none=True)


async def test_a_background_web_search(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    started = await sdk.responses.create(
        model="hosted", input="weather?", tools=[WEB_SEARCH], background=True
    )

    final = await settled(sdk, started.id, router.server)
    assert [item.type for item in final.output] == ["web_search_call", "message"]
    assert final.output_text == "Paris is sunny."


async def test_the_hosted_tools_include_and_max_tool_calls_reach_the_upstream(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    asked: Any = ["web_search_call.action.sources", "reasoning.encrypted_content"]
    await sdk.responses.create(
        model="hosted", input="weather", tools=[WEB_SEARCH], include=asked, max_tool_calls=2
    )
    body = sent(fake).body
    assert sorted(body["include"]) == sorted(asked) and body["max_tool_calls"] == 2

    # Without a hosted tool they stay the edge's, as before (a chat upstream refuses them).
    await sdk.responses.create(model="chat-only", input="hi", include=asked, max_tool_calls=2)
    (record,) = fake.state.calls(model="gpt-chat")
    assert "include" not in record.body and "max_tool_calls" not in record.body


async def test_a_compatible_server_runs_the_hosted_tools_its_config_names(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """Groq runs `code_interpreter` on its chat API: a chat caller's tool goes there as sent
    (as before hosted tools were routed); a tool it does not name, or an item handed back,
    goes to the Responses API deployment."""
    fake.state.set_scenario(Scenario(content="4"))
    messages: Any = [{"role": "user", "content": "2+2 in python"}]
    tools: Any = [{"type": "code_interpreter"}]
    await sdk.chat.completions.create(model="groq-like", messages=messages, tools=tools)
    (record,) = fake.state.calls(model="gpt-oss-runner")
    assert record.path.endswith("/chat/completions") and record.body["tools"] == tools

    fake.state.set_scenario(Scenario(tool_call=True, content="Sunny."))
    await sdk.responses.create(model="groq-like", input="weather", tools=[WEB_SEARCH])
    assert len(fake.state.calls(model="gpt-oss-runner")) == 1
    assert sent(fake, "gpt-hosted-3").body["tools"] == [WEB_SEARCH]

    fake.state.set_scenario(Scenario(content="Done."))
    output = {"type": "local_shell_call_output", "id": "call_1", "output": "{}"}
    handed: Any = [{"role": "user", "content": "ls"}, output]
    await sdk.responses.create(model="groq-like", input=handed)
    assert len(fake.state.calls(model="gpt-oss-runner")) == 1


async def test_a_background_refusal_names_the_responses_field_as_the_foreground_does(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle
) -> None:
    """An item handed back where no deployment carries it is refused by the router as its
    chat field (`messages[1]`) once the job runs: the background stream's `error` event and the
    Response's error say it as the foreground 400 does, of `input`, in the same words."""
    output = {"type": "local_shell_call_output", "id": "call_1", "output": "{}"}
    handed: Any = [{"role": "user", "content": "list files"}, output]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chat-only", input=handed, stream=True)
    told = caught.value.body
    assert isinstance(told, dict) and told["param"] == "input"

    stream = await sdk.responses.create(
        model="chat-only", input=handed, background=True, stream=True
    )
    events: list[Any] = [event async for event in stream]
    error, failed = events[-2:]
    assert (error.type, error.code, error.param) == ("error", told["code"], "input")
    assert error.message == told["message"]
    final = await settled(sdk, failed.response.id, router.server)
    assert final.error is not None and final.error.message == told["message"]
    assert fake.state.calls(model="gpt-chat") == []
