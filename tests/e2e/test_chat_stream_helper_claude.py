"""The openai SDK's chat stream helper on a Claude deployment running a server tool (web
search): the stream's Claude blocks (the search's call and result, the cited text block, its
citation) come to an HTTP chat caller as numbered one-entry lists (`anthropic_blocks`,
`anthropic_text_blocks`, `anthropic_citations`), so that the helper lists each whole instead of
merging one block into the next."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_server_tools import ASK, SEARCH, config

SEARCHED: Any = {"model": "claudes", "messages": [ASK], "tools": [SEARCH]}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


async def test_the_helper_lists_claudes_server_tool_blocks_whole(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True))
    said: dict[str, list[Any]] = {}
    async with sdk.chat.completions.stream(**SEARCHED) as stream:
        async for event in stream:
            if event.type != "chunk":
                continue
            for choice in event.chunk.choices:
                for key, value in (choice.delta.model_extra or {}).items():
                    said.setdefault(key, []).extend(value)
        final = await stream.get_final_completion()
    message = final.choices[0].message.model_dump()

    blocks = message["anthropic_blocks"]
    assert [(b["index"], b["type"]) for b in blocks] == [
        (0, "server_tool_use"),
        (1, "web_search_tool_result"),
    ]
    assert blocks[0]["input"] == {"query": "fake news today"}
    assert blocks[1]["tool_use_id"] == blocks[0]["id"]
    assert blocks[1]["content"][0]["url"].startswith("https://")
    assert [c["type"] for c in message["anthropic_citations"]] == ["web_search_result_location"]
    assert [t["type"] for t in message["anthropic_text_blocks"]] == ["text"]
    for key in ("anthropic_blocks", "anthropic_text_blocks", "anthropic_citations"):
        assert message[key] == said[key]  # as the stream said them, none merged into another
    assert not {"anthropic_block", "anthropic_text_block", "anthropic_citation"} & set(message)
