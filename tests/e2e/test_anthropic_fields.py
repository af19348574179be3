"""Anthropic's SDK sending fields of the wrong shape to `/v1/messages`: a 400
`invalid_request_error` naming the field, whichever deployment would answer, never a 500
nor a field dropped without a word."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_anthropic_sdk import KINDS, router  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]


async def refused(claude: anthropic.AsyncAnthropic, model: str, **fields: Any) -> str:
    """The message of the 400 the request with `fields` is refused with."""
    with pytest.raises(anthropic.BadRequestError) as error:
        await claude.messages.create(model=model, max_tokens=64, messages=HELLO, extra_body=fields)
    body: Any = error.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


@pytest.mark.parametrize("model", KINDS)
async def test_a_malformed_thinking_is_refused_naming_its_field(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    """A budget that is no integer reached the Claude mapping, which failed on it (a 500);
    another deployment dropped the thinking asked for."""
    enabled = {"type": "enabled", "budget_tokens": "lots"}
    assert "thinking.budget_tokens" in await refused(claude, model, thinking=enabled)
    assert "thinking.budget_tokens" in await refused(claude, model, thinking={"type": "enabled"})
    assert "'thinking'" in await refused(claude, model, thinking="on")
    assert "thinking.type" in await refused(claude, model, thinking={"budget_tokens": 2048})
    assert fake.state.calls() == []
    # A well-formed one still goes.
    fine: Any = {"type": "enabled", "budget_tokens": 1024}
    message = await claude.messages.create(
        model=model, max_tokens=2048, messages=HELLO, thinking=fine
    )
    assert message.content[0].type == "text"


@pytest.mark.parametrize("model", KINDS)
async def test_a_turn_without_content_is_refused_naming_it(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    """A user turn of no blocks was dropped: the request went on without it (here ending on
    the assistant's turn, a prefill the caller did not ask for)."""
    turns: Any = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": []},
    ]
    assert "messages[2].content" in await refused(claude, model, messages=turns)
    assert fake.state.calls() == []


@pytest.mark.parametrize("model", KINDS)
async def test_a_top_k_that_is_no_count_is_refused_naming_it(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    """`top_k` went to the upstream as given, whatever it was."""
    assert "top_k" in await refused(claude, model, top_k="many")
    assert "top_k" in await refused(claude, model, top_k=-1)
    assert fake.state.calls() == []
    await claude.messages.create(
        model=model, max_tokens=64, messages=HELLO, extra_body={"top_k": 5}
    )
    assert fake.state.calls()[-1].body["top_k"] == 5


@pytest.mark.parametrize("choice", ["auto", "none"])
async def test_a_tool_choice_without_tools_is_not_sent(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, choice: str
) -> None:
    """With no tools (none, or `tools: []` as frameworks send) there is nothing to choose:
    OpenAI's API refuses a `tool_choice` without `tools`, and an OpenAI-kind deployment was
    sent one; a Claude deployment's mapping already left it out. A choice that forces a call
    (`any`) is refused instead (tests/e2e/test_tools_absent_sdk.py)."""
    tool_choice: Any = {"type": choice}
    without: list[Any] = [{}, {"tools": []}]
    for tools in without:
        message = await claude.messages.create(
            model="chain", max_tokens=64, messages=HELLO, tool_choice=tool_choice, **tools
        )
        assert message.content[0].type == "text"
        sent = fake.state.calls()[-1].body
        assert "tool_choice" not in sent and "parallel_tool_calls" not in sent, sent


SCHEMA: Any = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("model", KINDS)
async def test_structured_outputs_reach_each_deployment_in_its_words(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    """`output_config.format` (structured outputs) went on as an unknown `output_config` key,
    which an OpenAI-format server ignores or refuses: it is its `response_format` there, and
    Claude's `output_config.format` at a Claude deployment (the effort beside it kept)."""
    config: Any = {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"}
    await claude.messages.create(model=model, max_tokens=64, messages=HELLO, output_config=config)
    sent = fake.state.calls()[-1].body
    if model == "sonnet":
        assert sent["output_config"]["format"] == {"type": "json_schema", "schema": SCHEMA}
        assert "response_format" not in sent
    else:
        assert sent["response_format"]["type"] == "json_schema", sent
        assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
        assert "format" not in (sent.get("output_config") or {}), sent
    wrong: Any = {"format": {"type": "json_schema"}}
    assert "output_config.format.schema" in await refused(claude, model, output_config=wrong)
    wrong = {"format": {"type": "xml", "schema": SCHEMA}}
    assert "output_config.format.type" in await refused(claude, model, output_config=wrong)
