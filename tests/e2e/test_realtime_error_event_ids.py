"""An `error` event the router sends about one of the caller's events names that event, as
OpenAI's do (`error.event_id`: the client event that caused it), so a caller can tell which of
its events was refused: a guardrail's block of a `conversation.item.create`. It named none."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import websockets

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_sdk import config

pytestmark = pytest.mark.timeout(30)


async def test_a_blocked_events_error_names_it(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    edge = await start_edge(await start_router(config(fake)))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        async with sdk.realtime.connect(model="voice") as connection:
            assert (await connection.recv()).type == "session.created"
            text = {"type": "input_text", "text": "the TOP-SECRET plan"}
            item: Any = {"type": "message", "role": "user", "content": [text]}
            await connection.conversation.item.create(item=item, event_id="event_mine_7")
            told = await connection.recv()
            with pytest.raises(websockets.ConnectionClosedError):
                await connection.recv()
    assert told.type == "error" and told.error.code == "content_policy_violation"
    assert told.error.event_id == "event_mine_7"
