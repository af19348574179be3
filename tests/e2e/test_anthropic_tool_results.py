"""A `tool_result` answering no `tool_use` of the message before it, through Anthropic's SDK
against the edge's `/v1/messages`: refused as Anthropic refuses it (400 invalid_request_error,
in its words), before any deployment is asked; a result answering its call still goes."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_anthropic_sdk import KINDS, router  # noqa: F401

ASK: Any = {"role": "user", "content": "Weather in Oslo?"}
CALL: Any = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
TOOL: Any = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}


def result(call_id: str) -> Any:
    return {"type": "tool_result", "tool_use_id": call_id, "content": "sunny"}


def unexpected(where: str, call_id: str) -> str:
    """Anthropic's message for it."""
    return (
        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {call_id}. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
        "message."
    )


async def _refused(claude: anthropic.AsyncAnthropic, stream: bool, messages: list[Any]) -> Any:
    request: Any = {"model": "sonnet", "max_tokens": 16, "messages": messages, "tools": [TOOL]}
    with pytest.raises(anthropic.BadRequestError) as refused:
        if stream:
            async with claude.messages.stream(**request) as events:
                [event async for event in events]
        else:
            await claude.messages.create(**request)
    assert refused.value.status_code == 400
    body: Any = refused.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_result_answering_no_tool_use_is_refused_in_anthropics_words(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    said = await _refused(claude, stream, [{"role": "user", "content": [result("toolu_9")]}])
    assert said == unexpected("messages.0.content.0", "toolu_9")
    # A call of an earlier turn, not the one before: Anthropic's rule is the previous message.
    earlier = [
        ASK,
        {"role": "assistant", "content": [CALL]},
        {"role": "user", "content": [result("toolu_1")]},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": [{"type": "text", "text": "And?"}, result("toolu_1")]},
    ]
    said = await _refused(claude, stream, earlier)
    assert said == unexpected("messages.4.content.1", "toolu_1")
    # One known result and one unknown: the unknown one is named.
    both = [ASK, {"role": "assistant", "content": [CALL]}]
    both.append({"role": "user", "content": [result("toolu_1"), result("toolu_2")]})
    said = await _refused(claude, stream, both)
    assert said == unexpected("messages.2.content.1", "toolu_2")
    assert fake.state.last() is None  # no deployment was asked


async def test_count_tokens_refuses_it_too(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.count_tokens(
            model="sonnet", messages=[{"role": "user", "content": [result("toolu_9")]}]
        )
    error: Any = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == unexpected("messages.0.content.0", "toolu_9")


@pytest.mark.parametrize("model", KINDS)
async def test_a_tool_result_answering_the_previous_messages_tool_use_goes(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    messages = [ASK, {"role": "assistant", "content": [CALL]}]
    messages.append({"role": "user", "content": [result("toolu_1")]})
    answer = await claude.messages.create(
        model=model, max_tokens=16, messages=messages, tools=[TOOL]
    )
    assert answer.content[0].type == "text"
    record = fake.state.last()
    assert record is not None and record.status == 200


def unanswered(where: str, *call_ids: str) -> str:
    """Anthropic's message for a tool_use the next message leaves unanswered."""
    return (
        f"{where}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(call_ids)}. Each `tool_use` block must have a corresponding `tool_result` "
        "block in the next message."
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_use_the_next_message_leaves_unanswered_is_refused_in_anthropics_words(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    second = {**CALL, "id": "toolu_2"}
    calls = {"role": "assistant", "content": [CALL, second]}
    said = await _refused(claude, stream, [ASK, calls, {"role": "user", "content": "Well?"}])
    assert said == unanswered("messages.2", "toolu_1", "toolu_2")
    # One answered, one not: the other is named.
    half = [ASK, calls, {"role": "user", "content": [result("toolu_2")]}]
    said = await _refused(claude, stream, half)
    assert said == unanswered("messages.2", "toolu_1")
    assert fake.state.last() is None  # no deployment was asked


@pytest.mark.parametrize("stream", [False, True])
async def test_a_system_turn_in_messages_is_refused_in_anthropics_words(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    system: Any = {"role": "system", "content": "Be terse."}
    said = await _refused(claude, stream, [system, ASK])
    assert said == (
        'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
        'parameter, not "system" as an input message role.'
    )
    assert fake.state.last() is None


async def test_count_tokens_refuses_a_system_turn_and_an_unanswered_tool_use_too(
    claude: anthropic.AsyncAnthropic,
) -> None:
    system: Any = {"role": "system", "content": "Be terse."}
    unanswered_call = [
        ASK,
        {"role": "assistant", "content": [CALL]},
        {"role": "user", "content": "?"},
    ]
    said = []
    for messages in ([system, ASK], unanswered_call):
        with pytest.raises(anthropic.BadRequestError) as refused:
            await claude.messages.count_tokens(model="sonnet", messages=messages)
        said.append(refused.value.body["error"]["message"])  # type: ignore[index]
    assert said[0].startswith('messages: Unexpected role "system".')
    assert said[1] == unanswered("messages.2", "toolu_1")
