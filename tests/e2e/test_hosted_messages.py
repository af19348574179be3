"""An upstream's answer with text on both sides of a hosted item: the Responses API entrance
gives its messages apart, in their order around the item, each with its own citations; a chat
caller gets one `content`, the item saying where it came in it (`text_at`)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_responses_hosted_tools import CITATION, WEB_SEARCH, config

BEFORE = "Let me look that up. "
AFTER = "Paris is sunny."


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


async def test_the_responses_entrance_keeps_the_messages_apart(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    response = await sdk.responses.create(model="hosted", input="weather", tools=[WEB_SEARCH])

    first, call, second = response.model_dump(exclude_none=True)["output"]
    assert (first["type"], call["type"], second["type"]) == (
        "message",
        "web_search_call",
        "message",
    )
    assert first["content"][0]["text"] == BEFORE and first["content"][0]["annotations"] == []
    assert second["content"][0]["text"] == AFTER
    assert second["content"][0]["annotations"] == [CITATION]
    assert first["id"] != second["id"] and "text_at" not in call
    assert response.output_text == BEFORE + AFTER


async def test_a_chat_caller_gets_one_content(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    messages: Any = [{"role": "user", "content": "weather"}]
    completion = await sdk.chat.completions.create(
        model="hosted", messages=messages, tools=[WEB_SEARCH]
    )

    message = completion.choices[0].message.model_dump()
    assert message["content"] == BEFORE + AFTER
    (call,) = message["hosted_items"]
    assert call["text_at"] == len(BEFORE) and call["precedes"] == 1
    (annotation,) = message["annotations"]
    cited = annotation["url_citation"]
    assert (cited["start_index"], cited["end_index"]) == (len(BEFORE), len(BEFORE + AFTER))


async def test_a_stream_keeps_them_apart_too(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    stream = await sdk.responses.create(
        model="hosted", input="weather", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    final = events[-1]
    assert final.type == "response.completed"
    kinds = [item.type for item in final.response.output]
    assert kinds == ["message", "web_search_call", "message"]
    done = [e.item.type for e in events if e.type == "response.output_item.done"]
    assert done == kinds


FILE_SEARCH: Any = {"type": "file_search", "vector_store_ids": ["vs_1"]}


async def test_a_later_message_s_file_citation_stays_in_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # A file citation's `index` is a position in the text (as a url citation's `start_index`):
    # joined into one content, it moves with the messages before it, and back when apart.
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    response = await sdk.responses.create(model="hosted", input="notes", tools=[FILE_SEARCH])

    first, call, second = response.model_dump(exclude_none=True)["output"]
    assert call["type"] == "file_search_call" and first["content"][0]["annotations"] == []
    (cited,) = second["content"][0]["annotations"]
    assert (cited["type"], cited["index"]) == ("file_citation", len(AFTER))

    messages: Any = [{"role": "user", "content": "notes"}]
    completion = await sdk.chat.completions.create(
        model="hosted", messages=messages, tools=[FILE_SEARCH]
    )
    (annotation,) = completion.choices[0].message.model_dump()["annotations"]
    assert annotation["file_citation"]["index"] == len(BEFORE + AFTER)


async def test_a_chat_stream_s_citations_point_into_its_one_content(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # As the unary answer's: a chat caller's content is the messages' texts joined.
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    messages: Any = [{"role": "user", "content": "weather"}]
    stream = await sdk.chat.completions.create(
        model="hosted", messages=messages, tools=[WEB_SEARCH], stream=True
    )
    chunks = [chunk.model_dump() async for chunk in stream]

    said = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    cited = [
        a for c in chunks if c["choices"] for a in c["choices"][0]["delta"].get("annotations") or []
    ]
    assert said == BEFORE + AFTER
    (annotation,) = cited
    spans = annotation["url_citation"]
    assert said[spans["start_index"] : spans["end_index"]] == AFTER


LOGPROBS: Any = ["message.output_text.logprobs"]


def tokens(part: Any) -> str:
    return "".join(entry["token"] for entry in part["logprobs"])


async def test_each_message_apart_has_its_own_logprobs(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    ask: Any = {"model": "hosted", "input": "weather", "tools": [WEB_SEARCH], "include": LOGPROBS}
    response = await sdk.responses.create(**ask, top_logprobs=2)

    first, _, second = response.model_dump()["output"]
    assert tokens(first["content"][0]) == BEFORE and tokens(second["content"][0]) == AFTER
    assert all(len(e["top_logprobs"]) == 2 for e in second["content"][0]["logprobs"])
    body = fake.state.calls(model="gpt-hosted")[-1].body
    assert (body["include"], body["top_logprobs"]) == (LOGPROBS, 2)

    stream = await sdk.responses.create(**ask, stream=True)
    events = [event async for event in stream]
    done = [e.model_dump() for e in events if e.type == "response.output_text.done"]
    assert [tokens(d) for d in done] == [BEFORE, AFTER]
    final = events[-1].model_dump()["response"]["output"]
    assert [tokens(final[0]["content"][0]), tokens(final[2]["content"][0])] == [BEFORE, AFTER]


async def test_a_stop_sequence_cuts_the_citations_with_the_text(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # The Responses API takes no stops: the router cuts "Paris is sunny. END…" itself. The
    # citation of the whole text, sent amid it when streamed, ends at the cut; one of text
    # past the cut (the message after a hosted item) is dropped.
    text = AFTER + " END Rome is rainy."
    fake.state.set_scenario(Scenario(tool_call=True, content=text, cite_after_deltas=1))
    ask: Any = {"model": "hosted", "messages": [{"role": "user", "content": "weather"}]}
    ask |= {"tools": [WEB_SEARCH], "stop": [" END"]}
    answer = (await sdk.chat.completions.create(**ask)).choices[0].message.model_dump()
    stream = await sdk.chat.completions.create(**ask, stream=True)
    chunks = [chunk.model_dump() async for chunk in stream]

    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    streamed = [a for delta in deltas for a in delta.get("annotations") or []]
    assert "".join(delta.get("content") or "" for delta in deltas) == AFTER
    for cited, said in ((answer["annotations"], answer["content"]), (streamed, AFTER)):
        (annotation,) = cited
        assert annotation["url_citation"]["end_index"] == len(said) == len(AFTER)
    fake.state.set_scenario(Scenario(tool_call=True, preamble=BEFORE, content=AFTER))
    cut = await sdk.chat.completions.create(**ask | {"stop": ["look"]})
    assert cut.choices[0].message.content == "Let me "
    assert cut.choices[0].message.model_dump().get("annotations") == []
