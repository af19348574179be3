"""Every text a Realtime client event sends the model is screened, not only a message's text
parts: a tool's result (`function_call_output`'s `output`), a function call handed back (its
`arguments`), and the items of an out-of-band `response.create` (`response.input`). Through
the official SDK, the edge and the router to the fake upstream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import connect

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_sdk import config
from tests.http_edge.harness import Edge

pytestmark = pytest.mark.timeout(30)

TOOL_RESULT: Any = {"type": "function_call_output", "call_id": "call_1", "output": "hunter2"}
CALL_BACK: Any = {
    "type": "function_call",
    "call_id": "call_1",
    "name": "lookup",
    "arguments": '{"code": "hunter2"}',
}


@pytest.fixture
async def edge(fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge) -> Edge:
    return await start_edge(await start_router(config(fake)))


def connected(edge: Edge) -> Any:
    import openai

    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    )
    return sdk.realtime.connect(model="voice")


async def next_event(connection: Any, kind: str) -> Any:
    """The next event of `kind` (or an `error`)."""
    async for event in connection:
        if event.type in (kind, "error"):
            return event
    raise AssertionError(f"the session ended before {kind}")


@pytest.mark.parametrize("item", [TOOL_RESULT, CALL_BACK], ids=["output", "arguments"])
async def test_a_tool_item_reaches_the_upstream_redacted(edge: Edge, item: Any) -> None:
    async with connected(edge) as connection:
        await connection.conversation.item.create(item=item)
        added = await next_event(connection, "conversation.item.added")
    assert added.type == "conversation.item.added", added
    sent = added.item.output if item["type"] == "function_call_output" else added.item.arguments
    assert "hunter2" not in sent and "[REDACTED" in sent


async def ends_the_session(edge: Edge, response: Any) -> None:
    """A `response.create` of `response` ends the session: an `error` event, then 1008."""
    async with connected(edge) as connection:
        await connection.response.create(response=response)
        told = await next_event(connection, "response.created")
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
    assert told.type == "error" and told.error.code == "content_policy_violation"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_blocked_text_in_an_out_of_band_response_ends_the_session(edge: Edge) -> None:
    text = {"type": "input_text", "text": "the TOP-SECRET plan"}
    inline = {"type": "message", "role": "user", "content": [text]}
    await ends_the_session(edge, {"conversation": "none", "input": [inline]})


async def test_an_event_type_written_with_escapes_is_screened_too(edge: Edge) -> None:
    """`"conversation\\u002eitem.create"` is the same JSON string to the upstream: the cheap
    test for events that may carry text must not let it pass unread."""
    raw = (
        '{"type": "conversation\\u002eitem.create", "item": {"type": "message", "role": "user",'
        ' "content": [{"type": "input_text", "text": "the TOP-SECRET plan"}]}}'
    )
    await raw_event_ends_the_session(edge, raw)


@pytest.mark.parametrize(
    "extra", ['"note": NaN', '"note": 1e999', '"note": "\\ud800"'], ids=["nan", "inf", "surrogate"]
)
async def test_an_event_stricter_json_refuses_is_screened_too(edge: Edge, extra: str) -> None:
    """JSON that orjson refuses but other parsers read (NaN, an overflowing number, a lone
    surrogate's escape: Python's, Go's) is no way around the screen."""
    raw = (
        '{"type": "conversation.item.create", "item": {"type": "message", "role": "user",'
        f' {extra}, "content": [{{"type": "input_text", "text": "the TOP-SECRET plan"}}]}}}}'
    )
    await raw_event_ends_the_session(edge, raw)


async def raw_event_ends_the_session(edge: Edge, raw: str) -> None:
    """`raw` sent as it is (no SDK) ends the session: an `error` event, then 1008."""
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
    headers = {"Authorization": "Bearer sk-caller"}
    async with connect(url, additional_headers=headers) as socket:
        assert orjson.loads(await socket.recv())["type"] == "session.created"
        await socket.send(raw)
        told = orjson.loads(await socket.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.recv()
    assert told["type"] == "error" and told["error"]["code"] == "content_policy_violation"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


LOOKUP: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Looks up the account; the admin code is hunter2.",
    "parameters": {"type": "object", "properties": {"code": {"enum": ["hunter2", "other"]}}},
}


async def test_a_function_tool_definition_reaches_the_upstream_redacted(edge: Edge) -> None:
    async with connected(edge) as connection:
        await connection.session.update(session={"type": "realtime", "tools": [LOOKUP]})
        updated = await next_event(connection, "session.updated")
    assert updated.type == "session.updated", updated
    (tool,) = updated.session.tools
    assert "hunter2" not in tool.description and "[REDACTED" in tool.description
    assert "hunter2" not in str(tool.parameters) and tool.name == "lookup"


async def test_a_redacted_find_in_a_function_s_name_ends_the_session(edge: Edge) -> None:
    """A function's name is not rewritten (the model calls it by it): a redact rule's find
    there ends the session as a block does."""
    tool = {**LOOKUP, "name": "hunter2", "description": "Looks up the account."}
    await raw_event_ends_the_session(
        edge, orjson.dumps({"type": "session.update", "session": {"tools": [tool]}}).decode()
    )


async def test_a_blocked_text_in_a_response_s_tools_ends_the_session(edge: Edge) -> None:
    tool = {**LOOKUP, "description": "Reads the TOP-SECRET plans."}
    await ends_the_session(edge, {"tools": [tool]})


async def test_a_prompt_s_variables_reach_the_upstream_redacted(edge: Edge) -> None:
    variables = {"code": "hunter2", "note": {"type": "input_text", "text": "use hunter2"}}
    prompt = {"id": "pmpt_1", "variables": variables}
    async with connected(edge) as connection:
        await connection.session.update(session={"type": "realtime", "prompt": prompt})
        updated = await next_event(connection, "session.updated")
    assert updated.type == "session.updated", updated
    sent = updated.session.prompt.variables
    assert sent["code"] == "[REDACTED:pattern]" and "hunter2" not in str(sent["note"])
