"""The Responses API's `include`, end to end with the official `openai` SDK: asked on create,
`message.output_text.logprobs` puts the upstream's logprobs in the output text (plain,
streamed deltas and their done event, and a background response's), and reading the response
back answers them as stored; every value not OpenAI's is a 400 naming it, on create, retrieve,
input items and a conversation's items, while OpenAI's own are taken there."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

import openai
import pytest
from openai.types.responses import Response, ResponseOutputMessage, ResponseOutputText

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle
from tests.e2e.background import settled

LOGPROBS: Any = ["message.output_text.logprobs"]
UNKNOWN: Any = ["message.output_text.logprobs", "message.output_text.tokens"]


def chat_bodies(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [call.body for call in fake.state.calls()]


def text_logprobs(response: Response) -> list[dict[str, Any]]:
    """The logprobs of the response's output text, as JSON."""
    (message,) = [item for item in response.output if isinstance(item, ResponseOutputMessage)]
    (part,) = [p for p in message.content if isinstance(p, ResponseOutputText)]
    return [entry.model_dump() for entry in part.logprobs or []]


async def test_logprobs_asked_on_create_come_plain_streamed_and_stored(
    sdk: openai.AsyncOpenAI, router: RouterHandle, fake: FakeUpstream
) -> None:
    plain = await sdk.responses.create(
        model="chain", input="one two", include=LOGPROBS, top_logprobs=2
    )
    stream = await sdk.responses.create(
        model="chain", input="one two", include=LOGPROBS, top_logprobs=2, stream=True
    )
    events = [event async for event in stream]
    started = await sdk.responses.create(
        model="chain", input="one two", include=LOGPROBS, top_logprobs=2, background=True
    )
    background = await settled(sdk, started.id, router.server)
    without = await sdk.responses.create(model="chain", input="one two")

    logprobs = text_logprobs(plain)
    assert "".join(p["token"] for p in logprobs) == plain.output_text == "Echo: one two"
    assert all(len(p["top_logprobs"]) == 2 and p["bytes"] for p in logprobs)
    # A stream's logprobs come with its deltas; its done event and its Response have them all.
    deltas = [
        p.model_dump() for e in events if e.type == "response.output_text.delta" for p in e.logprobs
    ]
    assert [p["token"] for p in deltas] == [p["token"] for p in logprobs]
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    (completed,) = [e.response for e in events if e.type == "response.completed"]
    assert [p.model_dump() for p in done.logprobs] == deltas == text_logprobs(completed)
    assert text_logprobs(background) == logprobs
    assert text_logprobs(without) == []
    bodies = chat_bodies(fake)
    assert [b.get("logprobs") for b in bodies] == [True, True, True, None]
    for read in (
        await sdk.responses.retrieve(plain.id, include=LOGPROBS),
        await sdk.responses.retrieve(plain.id),  # as stored: include adds nothing, takes none
    ):
        assert read.model_dump() == plain.model_dump()


async def test_an_include_not_openai_s_is_a_400_naming_it_everywhere(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answer = await sdk.responses.create(model="chain", input="hello")
    conversation = await sdk.conversations.create(items=[{"role": "user", "content": "hi"}])
    items = await sdk.conversations.items.list(conversation.id)
    item_id = cast(str, items.data[0].id)
    calls: list[Awaitable[object]] = [
        sdk.responses.create(model="chain", input="hello", include=UNKNOWN),
        sdk.responses.retrieve(answer.id, include=UNKNOWN),
        sdk.responses.input_items.list(answer.id, include=UNKNOWN),
        sdk.conversations.items.list(conversation.id, include=UNKNOWN),
        sdk.conversations.items.retrieve(item_id, conversation_id=conversation.id, include=UNKNOWN),
        sdk.conversations.items.create(
            conversation.id, items=[{"role": "user", "content": "more"}], include=UNKNOWN
        ),
    ]
    upstream_calls = fake.state.count()

    for call in calls:
        with pytest.raises(openai.BadRequestError) as refused:
            await call
        error = cast(dict[str, Any], refused.value.body)
        assert error["param"] == "include[1]"
        assert error["message"].startswith(
            "Invalid value for 'include[1]': 'message.output_text.tokens'. Supported values "
            "are: 'file_search_call.results', "
        )

    assert fake.state.count() == upstream_calls  # nothing went upstream
    listed = await sdk.conversations.items.list(conversation.id, include=LOGPROBS)
    assert [i.id for i in listed.data] == [item_id]  # nothing was added by the refused call
    images: Any = ["message.input_image.image_url", "reasoning.encrypted_content"]
    assert (await sdk.responses.input_items.list(answer.id, include=images)).data
    assert (await sdk.responses.retrieve(answer.id, include=images)).id == answer.id
