"""`client.responses.compact` end to end, and the compaction items it answers fed back: the
official `openai` SDK → the edge → the router (a routed chat call) → the fake upstream, which
sees the summarisation instruction, and later the summary where the compaction item stood."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.responses import CompactedResponse, ResponseCompactionItem

from clients import SUMMARY_INSTRUCTION
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.conftest import Open
from tests.e2e.stream_harness import StartEdge
from tests.router_service.auth.helpers import client, guarded_config

SUMMARY = "Ann likes green tea and lives in Oslo."
SUMMARISED = f"Summary of the earlier conversation:\n{SUMMARY}"
# OpenAI's own (encrypted) compaction: not ours to read.
FOREIGN = {"type": "compaction", "encrypted_content": "gAAAAABpZ2Vu-openai-ciphertext"}
NARROW = "sk-narrow-0123456789"


def upstream_messages(fake: FakeUpstream) -> list[dict[str, Any]]:
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    messages: list[dict[str, Any]] = record.body["messages"]
    return messages


async def compacted(sdk: openai.AsyncOpenAI, fake: FakeUpstream, **body: Any) -> CompactedResponse:
    fake.state.set_scenario(Scenario(content=SUMMARY, times=1))
    return await sdk.responses.compact(model="chain", **body)


async def test_compact_answers_the_user_messages_then_one_compaction_item(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    conversation: list[Any] = [
        {"role": "user", "content": "I am Ann; I like green tea."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "I live in Oslo."},
    ]
    out = await compacted(sdk, fake, input=conversation, instructions="Be brief.")
    assert isinstance(out, CompactedResponse) and out.object == "response.compaction"
    *users, item = out.output
    assert [(u.type, u.role) for u in users] == [("message", "user")] * 2  # type: ignore[union-attr]
    assert [u.content[0].text for u in users] == [  # type: ignore[union-attr,index]
        "I am Ann; I like green tea.",
        "I live in Oslo.",
    ]
    assert isinstance(item, ResponseCompactionItem) and item.encrypted_content.startswith("sbc1.")
    assert out.usage.total_tokens > 0
    # The model was asked, after the conversation, with the one fixed instruction.
    assert upstream_messages(fake) == [
        {"role": "system", "content": "Be brief."},
        *conversation,
        {"role": "user", "content": SUMMARY_INSTRUCTION},
    ]


async def test_the_compacted_output_fed_back_gives_the_upstream_the_summary(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    fake.state.set_scenario(Scenario(content=SUMMARY, times=1))
    raw = await sdk.responses.with_raw_response.compact(
        model="chain", input="I am Ann; I like green tea."
    )
    items: list[Any] = raw.http_response.json()["output"]  # as an agent keeps them
    answer = await sdk.responses.create(
        model="chain", input=[*items, {"role": "user", "content": "What do I like?"}]
    )
    assert answer.output_text == "Echo: What do I like?"
    seen = [
        {"role": "user", "content": [{"type": "text", "text": "I am Ann; I like green tea."}]},
        {"role": "system", "content": SUMMARISED},
        {"role": "user", "content": "What do I like?"},
    ]
    assert upstream_messages(fake) == seen
    # A stored response holding it is continued with the summary still in its place.
    await sdk.responses.create(model="chain", input="And where?", previous_response_id=answer.id)
    assert upstream_messages(fake) == [
        *seen,
        {"role": "assistant", "content": "Echo: What do I like?"},
        {"role": "user", "content": "And where?"},
    ]


async def test_a_compaction_item_in_a_conversation_and_in_a_count(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    out = await compacted(sdk, fake, input="I am Ann.")
    item = out.output[-1].model_dump(exclude_none=True)
    conversation = await sdk.conversations.create(items=[item])  # type: ignore[list-item]
    await sdk.responses.create(model="chain", input="Who am I?", conversation=conversation.id)
    assert upstream_messages(fake)[0] == {"role": "system", "content": SUMMARISED}
    plain = await sdk.responses.input_tokens.count(model="chain", input="Who am I?")
    counted = await sdk.responses.input_tokens.count(
        model="chain",
        input=[item, {"role": "user", "content": "Who am I?"}],  # type: ignore[list-item]
    )
    assert counted.input_tokens > plain.input_tokens


async def test_a_compaction_not_made_here_is_a_400_naming_it(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    hello = {"role": "user", "content": "hello"}
    calls = (
        sdk.responses.create(model="chain", input=[FOREIGN, hello]),  # type: ignore[list-item]
        sdk.responses.compact(model="chain", input=[FOREIGN, hello]),  # type: ignore[list-item]
        sdk.responses.input_tokens.count(model="chain", input=[FOREIGN]),  # type: ignore[list-item]
    )
    for call in calls:
        with pytest.raises(openai.BadRequestError) as refused:
            await call
        assert refused.value.body["param"] == "input[0].encrypted_content"  # type: ignore[index]
        assert "not made by this gateway" in refused.value.message
    assert not fake.state.records


async def test_compact_fails_over_like_any_call(open_sdk: Open, fake: FakeUpstream) -> None:
    sdk = await open_sdk()
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    raw = await sdk.responses.with_raw_response.compact(model="chain", input="I am Ann.")
    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.headers["x-switchboard-attempts"] == "2"
    assert raw.parse().output[-1].type == "compaction"


async def test_compact_needs_the_model_permission(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    config = guarded_config(fake.base_url, client("narrow", NARROW, models=["embedder"]))
    edge = await start_edge(await start_router(config, clock=ManualClock()))
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=NARROW, max_retries=0
    ) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await sdk.responses.compact(model="chain", input="I am Ann.")
    assert refused.value.body["param"] == "model"  # type: ignore[index]
    assert not fake.state.records


async def test_compact_continues_a_previous_response(open_sdk: Open, fake: FakeUpstream) -> None:
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="I am Ann.")
    out = await compacted(sdk, fake, input="I live in Oslo.", previous_response_id=first.id)
    texts = [item.content[0].text for item in out.output[:-1]]  # type: ignore[union-attr,index]
    assert texts == ["I am Ann.", "I live in Oslo."]
    assert upstream_messages(fake) == [
        {"role": "user", "content": "I am Ann."},
        {"role": "assistant", "content": "Echo: I am Ann."},
        {"role": "user", "content": "I live in Oslo."},
        {"role": "user", "content": SUMMARY_INSTRUCTION},
    ]


async def test_a_compaction_is_made_at_the_edges_clock(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """`created_at` is read from the edge's clock (a ManualClock here), not the wall."""
    clock = ManualClock(1_600_000_000)
    router = await start_router(guarded_config(fake.base_url, client("c", NARROW)))
    edge = await start_edge(router, clock=clock)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=NARROW, max_retries=0
    ) as sdk:
        out = await compacted(sdk, fake, input="I am Ann.")
        assert out.created_at == 1_600_000_000
        clock.advance(90)
        answered = await sdk.responses.create(model="chain", input="I am Ann.")
        assert answered.created_at == 1_600_000_090


async def test_compact_tells_hosted_tools_items_as_text(open_sdk: Open, fake: FakeUpstream) -> None:
    # A conversation a Responses deployment's web search answered, compacted by chat models.
    sdk = await open_sdk()
    search = {"type": "web_search_call", "id": "ws_1", "status": "completed",
              "action": {"type": "search", "query": "weather in Paris"}}  # fmt: skip
    conversation: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        search,
        {"role": "assistant", "content": "Sunny."},
    ]
    out = await compacted(sdk, fake, input=conversation)

    assert out.object == "response.compaction"
    said = upstream_messages(fake)
    action = '{"action":{"type":"search","query":"weather in Paris"}}'
    assert said[1] == {"role": "assistant", "content": f"[web_search_call ws_1]\n{action}"}
    assert "hosted_items" not in str(said)


async def test_compact_refuses_stream_by_name_rather_than_answering_unstreamed(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    """OpenAI's compaction has no stream: `stream: true` is an unknown parameter there (400
    naming it), not a request silently answered with one JSON object."""
    sdk = await open_sdk()
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.compact(model="chain", input="hi", extra_body={"stream": True})
    assert refused.value.body["param"] == "stream"  # type: ignore[index]
    assert "cannot be streamed" in refused.value.message
    assert not fake.state.records
    # `stream: false` asks for what it gets: answered.
    fake.state.set_scenario(Scenario(content=SUMMARY, times=1))
    out = await sdk.responses.compact(model="chain", input="hi", extra_body={"stream": False})
    assert out.object == "response.compaction"
