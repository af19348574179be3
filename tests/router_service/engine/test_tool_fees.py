"""Hosted tool calls in the cost: a price's `tool_calls_usd` charges each web search (file
search, image generation) call and each code interpreter container an answer made, beside its
tokens, unary and streamed; a tool the price does not name costs nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from clients.switchboard.v1 import chat_pb2
from router_service.config import PriceConfig
from router_service.engine._tool_fees import (
    Billed,
    FeeBound,
    bill_answer,
    fee_bound,
    fees,
    paid_containers,
)
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream
from tests.router_service.engine.test_cost import expected

PRICE: dict[str, Any] = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}
FEES = {"web_search": 0.01, "image_generation": 0.04, "code_interpreter": 0.03}
TOOLS = [chat_pb2.Tool(type="web_search")]


def config(fake_url: str) -> dict[str, Any]:
    out = base_config(fake_url)
    hosted = {"provider": "alpha", "model": "gpt-hosted", "api": "responses"}
    out["models"]["hosted"] = {
        "deployments": [{**hosted, "price": {**PRICE, "tool_calls_usd": FEES}}]
    }
    return out


async def test_a_unary_answer_pays_its_web_search(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    router = await start_router(config(fake.base_url))
    answer = await router.stub.Chat(chat("hosted", "weather", tools=TOOLS))

    tokens = expected(PRICE, answer.completion.usage)
    assert answer.route.cost_usd == pytest.approx(tokens + 0.01)


async def test_a_stream_pays_its_web_search(fake: FakeUpstream, start_router: StartRouter) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    router = await start_router(config(fake.base_url))
    events = [
        e async for e in router.stub.ChatStream(chat_stream("hosted", "weather", tools=TOOLS))
    ]

    summary = next(e.summary for e in events if e.WhichOneof("event") == "summary")
    assert summary.route.cost_usd == pytest.approx(expected(PRICE, summary.usage) + 0.01)


def code_interpreter(container: str | None = None) -> chat_pb2.Tool:
    named = {"container": container if container is not None else {"type": "auto"}}
    return chat_pb2.Tool(type="code_interpreter", extra_json=orjson.dumps(named).decode())


async def test_a_new_container_is_a_session_one_named_is_paid_already(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # A container the request names was made (and paid) by the Containers API; one its items
    # handed back ran in is a session already counted: neither is a new session.
    fake.state.set_scenario(Scenario(tool_call=True, content="4"))
    router = await start_router(config(fake.base_url))
    auto = await router.stub.Chat(chat("hosted", "add", tools=[code_interpreter()]))
    named = await router.stub.Chat(chat("hosted", "add", tools=[code_interpreter("cntr_mine")]))

    usage = auto.completion.usage
    assert auto.route.cost_usd == pytest.approx(expected(PRICE, usage) + 0.03)
    assert named.route.cost_usd == pytest.approx(expected(PRICE, named.completion.usage))


async def test_a_stream_in_a_named_container_pays_no_session(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="4"))
    router = await start_router(config(fake.base_url))
    tools = [code_interpreter("cntr_mine")]
    events = [e async for e in router.stub.ChatStream(chat_stream("hosted", "add", tools=tools))]

    summary = next(e.summary for e in events if e.WhichOneof("event") == "summary")
    assert summary.route.cost_usd == pytest.approx(expected(PRICE, summary.usage))
    auto = chat_stream("hosted", "add", tools=[code_interpreter()])
    events = [e async for e in router.stub.ChatStream(auto)]
    summary = next(e.summary for e in events if e.WhichOneof("event") == "summary")
    assert summary.route.cost_usd == pytest.approx(expected(PRICE, summary.usage) + 0.03)


def test_a_container_handed_back_is_paid_already() -> None:
    item = {"type": "code_interpreter_call", "id": "ci_1", "container_id": "cntr_old"}
    turn = chat_pb2.ChatMessage(
        role=chat_pb2.ROLE_ASSISTANT, extra_json=orjson.dumps({"hosted_items": [item]}).decode()
    )
    params = chat_pb2.ChatParams(messages=[turn], tools=[code_interpreter("cntr_new")])
    billed: Billed = {("code_interpreter", "cntr_old"), ("code_interpreter", "cntr_3")}

    assert paid_containers(params) == {"cntr_old", "cntr_new"}
    assert fees(billed, paid_containers(params)) == {"code_interpreter": 1}


def test_a_code_interpreter_is_billed_by_its_container() -> None:
    items = [
        {"id": "ci_1", "type": "code_interpreter_call", "container_id": "cntr_a"},
        {"id": "ci_2", "type": "code_interpreter_call", "container_id": "cntr_a"},
        {"id": "ci_3", "type": "code_interpreter_call", "container_id": "cntr_b"},
        {"id": "ws_1", "type": "web_search_call"},
        {"id": "mcp_1", "type": "mcp_call"},
    ]
    message = chat_pb2.ChatMessage(extra_json=orjson.dumps({"hosted_items": items}).decode())
    billed: Billed = set()
    bill_answer(billed, chat_pb2.ChatCompletion(choices=[chat_pb2.Choice(message=message)]))

    assert fees(billed) == {"code_interpreter": 2, "web_search": 1}


def asking(*tools: chat_pb2.Tool, **params: Any) -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(model="hosted", tools=tools, **params)


SEARCH_DATED = chat_pb2.Tool(type="web_search_preview_2025_03_11")
IMAGES = chat_pb2.Tool(type="image_generation")
MCP = chat_pb2.Tool(type="mcp", extra_json='{"server_label": "x"}')
NO_TOOLS = chat_pb2.ToolChoice(mode=chat_pb2.TOOL_CHOICE_MODE_NONE)


@pytest.mark.parametrize(
    ("params", "usd"),
    [
        # Without max_tool_calls: one call of each fee-charged tool (an MCP call has no fee).
        (asking(SEARCH_DATED, IMAGES, MCP), 0.05),
        # With it: that many calls of the dearest tool, whatever their mix.
        (asking(SEARCH_DATED, IMAGES, extra_json='{"max_tool_calls": 3}'), 0.12),
        (asking(SEARCH_DATED, extra_json='{"max_tool_calls": 0}'), 0.0),
        (asking(IMAGES, extra_json='{"max_tool_calls": "3"}'), 0.04),  # not a number: no bound
        (asking(code_interpreter()), 0.03),  # a new container: one session
        (asking(code_interpreter("cntr_mine")), 0.0),  # paid already
        (asking(IMAGES, tool_choice=NO_TOOLS), 0.0),
        (asking(chat_pb2.Tool(type="file_search")), 0.0),  # a tool the price does not name
    ],
)
def test_the_fees_a_request_may_pay(params: chat_pb2.ChatParams, usd: float) -> None:
    price = PriceConfig.model_validate({**PRICE, "tool_calls_usd": FEES})
    assert fee_bound(params).usd(price) == pytest.approx(usd)


def test_the_tools_that_may_be_charged() -> None:
    assert fee_bound(asking(SEARCH_DATED, IMAGES, MCP)) == FeeBound(
        frozenset({"web_search", "image_generation"})
    )
    assert fee_bound(asking(MCP, code_interpreter("cntr_mine"))) == FeeBound()


@pytest.mark.parametrize("fees_given", [{"web_serch": 0.01}, {"web_search": -1}])
def test_an_unknown_tool_or_a_negative_fee_is_refused(fees_given: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        PriceConfig.model_validate({**PRICE, "tool_calls_usd": fees_given})
