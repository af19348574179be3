"""One `model` in every event of a Responses stream, as OpenAI's: its `response.created` and
`response.in_progress` name the model its `response.completed` (and a unary answer) names, not
the group's alias first and the deployment's model last."""

from __future__ import annotations

import openai
from openai.types.responses import Response

from router_service.fake_upstream import FakeUpstream


async def test_a_streams_events_all_name_the_model_its_answer_names(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answered = await sdk.responses.create(model="chain", input="hi")
    stream = await sdk.responses.create(model="chain", input="hi", stream=True)
    said: list[Response] = [e.response async for e in stream if hasattr(e, "response")]

    assert [e.model for e in said] == [answered.model] * len(said)
    assert len(said) == 3  # created, in_progress, completed
