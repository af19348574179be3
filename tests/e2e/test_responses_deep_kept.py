"""What a Responses request may hold nested deep (a tool's `parameters`, an input part's own
field: each checked where it goes, up to 238 levels) is kept with the Response the router
stores: a Response echoes the request's `tools` three levels below its root, an item holds its
parts' fields three below its own, so the check of a kept object leaves room for where the
object itself goes (an event's `response`, a page's `data[i]`), not again for its fields. The
official `openai` SDK → the edge → the router → the fake upstream."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.background import settled
from tests.e2e.stream_harness import StartEdge

pytestmark = pytest.mark.timeout(30)

# The deepest a request's field may nest (254 written, 16 left for where it goes), and less.
DEPTHS = [236, 238]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return {"type": "object", "properties": {}, "zz": value}


async def sdk_of(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> tuple[Any, openai.AsyncOpenAI]:
    router = await start_router(base_config(fake.base_url), clock=ManualClock())
    edge = await start_edge(router)
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    )
    return router, sdk


def tools(depth: int) -> Any:
    return [{"type": "function", "name": "f", "parameters": nested(depth)}]


@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_response_with_a_deep_tool_is_stored(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, depth: int
) -> None:
    _, sdk = await sdk_of(fake, start_router, start_edge)
    async with sdk:
        answer = await sdk.responses.create(model="chain", input="hi", tools=tools(depth))
        assert answer.to_dict()["store"] is True  # was False: the router refused to keep it
        again = await sdk.responses.retrieve(answer.id)
        assert again.output_text == answer.output_text == "Echo: hi"


@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_background_response_with_a_deep_tool_runs(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, depth: int
) -> None:
    router, sdk = await sdk_of(fake, start_router, start_edge)
    async with sdk:  # was a 400 naming `response_json`, a field the caller never sent
        started = await sdk.responses.create(
            model="chain", input="hi", tools=tools(depth), background=True
        )
        final = await settled(sdk, started.id, router.server)
        assert (final.status, final.output_text) == ("completed", "Echo: hi")


async def test_a_conversation_keeps_an_input_whose_part_nests_deep(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    _, sdk = await sdk_of(fake, start_router, start_edge)
    part = {"type": "input_text", "text": "hi", "zz": nested(237)}
    item: Any = {"type": "message", "role": "user", "content": [part]}
    async with sdk:
        conversation = await sdk.conversations.create()
        answer = await sdk.responses.create(
            model="chain", input=[item], conversation=conversation.id
        )
        assert answer.output_text == "Echo: hi"
        items = await sdk.conversations.items.list(conversation.id)
        assert len(items.data) == 2  # the input and the answer, both kept


async def test_an_item_kept_deeper_than_a_request_may_send_is_listed_and_continued(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A gRPC caller's item nested past what a request may hold, yet still written where it
    goes (a page's `data[i]`, an event's `item`), is kept; the conversation lists it and is
    continued (what the upstream is sent of it is the codec's, checked there)."""
    router, sdk = await sdk_of(fake, start_router, start_edge)
    content = [{"type": "input_text", "text": "hi"}]
    item = {"type": "message", "role": "user", "content": content, "zz": nested(245)}
    request = pb.CreateConversationRequest(items_json=[json.dumps(item)])
    created = await router.stub.CreateConversation(request)
    conversation_id = created.conversation.id
    async with sdk:
        answer = await sdk.responses.create(
            model="chain", input="more", conversation=conversation_id, stream=True
        )
        kinds = [event.type async for event in answer]
        assert kinds[-1] == "response.completed", kinds
        listed = await sdk.conversations.items.list(conversation_id, order="asc")
        assert [i.type for i in listed.data] == ["message"] * 3
        assert listed.data[0].to_dict()["zz"] == item["zz"]
