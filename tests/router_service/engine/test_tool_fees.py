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
from router_service.engine._tool_fees import Billed, bill_answer, fees
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream
from tests.router_service.engine.test_cost import expected

PRICE: dict[str, Any] = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}
FEES = {"web_search": 0.01, "image_generation": 0.04}
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


@pytest.mark.parametrize("fees_given", [{"web_serch": 0.01}, {"web_search": -1}])
def test_an_unknown_tool_or_a_negative_fee_is_refused(fees_given: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        PriceConfig.model_validate({**PRICE, "tool_calls_usd": fees_given})
