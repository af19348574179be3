"""What a Response repeats of its request, as OpenAI's does: `text.format` beside a `verbosity`
sent alone (a client reads `response.text.format.type`: it was None), and `max_tool_calls`."""

from __future__ import annotations

import openai

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_responses_sdk import valid


async def test_verbosity_alone_reads_back_beside_the_text_format(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answered = valid(
        await sdk.responses.create(model="chain", input="hi", text={"verbosity": "low"})
    )
    stream = await sdk.responses.create(
        model="chain", input="hi", text={"verbosity": "low"}, stream=True
    )
    ends = [
        e.response async for e in stream if e.type in ("response.created", "response.completed")
    ]
    kept = await sdk.responses.retrieve(answered.id)

    for response in (answered, *ends, kept):
        assert response.text is not None and response.text.format is not None
        assert (response.text.format.type, response.text.verbosity) == ("text", "low")


async def test_max_tool_calls_is_echoed(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    answered = valid(await sdk.responses.create(model="chain", input="hi", max_tool_calls=3))
    stream = await sdk.responses.create(model="chain", input="hi", max_tool_calls=3, stream=True)
    ends = [
        e.response async for e in stream if e.type in ("response.created", "response.completed")
    ]

    assert [r.max_tool_calls for r in (answered, *ends)] == [3, 3, 3]
