"""`n` above 1 and `logprobs: true` at kinds whose API has neither (Claude at Anthropic and Vertex
AI, Bedrock's Converse, Cohere): the deployment is passed over (UNSUPPORTED_INPUT), the group's
next deployment answers, and a group with none is a 400 naming the field. They were dropped: an
app asking for 2 choices got 1 (`choices[1]` an IndexError), one asking for logprobs got
`logprobs: None` (`.content` an AttributeError), and neither knew why."""

from __future__ import annotations

from typing import Any

import grpc
import openai
import orjson
import pytest
from google import genai
from google.genai import errors, types

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle
from tests.e2e.test_reasoning_sdk import HELLO, router  # noqa: F401
from tests.router_service.server.test_field_paths import chat, refusal

ONE_CHOICE = ["sonnet", "vx-sonnet", "br-claude", "br-nova", "command"]
ASKS: dict[str, dict[str, Any]] = {"n": {"n": 2}, "logprobs": {"logprobs": True}}


async def create(sdk: openai.AsyncOpenAI, streaming: bool, **fields: Any) -> list[Any]:
    """The choices of one call, a stream's gathered by index (content, logprobs)."""
    if not streaming:
        answer = await sdk.chat.completions.create(messages=HELLO, **fields)
        return [(c.message.content, c.logprobs) for c in answer.choices]
    stream = await sdk.chat.completions.create(messages=HELLO, stream=True, **fields)
    said: dict[int, tuple[str, Any]] = {}
    async for chunk in stream:
        for c in chunk.choices:
            text, logprobs = said.get(c.index, ("", None))
            said[c.index] = (text + (c.delta.content or ""), c.logprobs or logprobs)
    return [said[i] for i in sorted(said)]


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("asked", sorted(ASKS))
async def test_the_groups_next_deployment_answers_what_claude_cannot(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, asked: str, streaming: bool
) -> None:
    choices = await create(sdk, streaming, model="claude-then-gpt", **ASKS[asked])

    assert [c.model for c in fake.state.calls()] == ["model-a"]
    if asked == "n":
        assert [text for text, _ in choices] == ["Echo: hello", "Echo: hello"]
    else:
        [(_, logprobs)] = choices
        assert logprobs is not None and logprobs.content


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("asked", sorted(ASKS))
@pytest.mark.parametrize("model", ONE_CHOICE)
async def test_with_no_deployment_that_gives_it_the_400_names_the_field(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, asked: str, streaming: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await create(sdk, streaming, model=model, **ASKS[asked])

    assert refused.value.param == asked
    assert f"'{asked}'" in refused.value.message
    assert fake.state.count() == 0


@pytest.mark.parametrize("model", ONE_CHOICE)
async def test_one_choice_without_logprobs_is_answered_there(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    choices = await create(sdk, False, model=model, n=1, logprobs=False)

    assert [logprobs for _, logprobs in choices] == [None]
    assert fake.state.count() == 1


@pytest.mark.parametrize("asked", sorted(ASKS))
async def test_a_grpc_caller_hears_invalid_argument_naming_the_field(
    router: RouterHandle,  # noqa: F811  (the fixture imported above)
    asked: str,
) -> None:
    params = chat(model="sonnet", **ASKS[asked])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=params))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info, _ = refusal(refused.value)  # as the upstream's own 400 would say it: its error's param
    assert orjson.loads(info["upstream_error"])["param"] == asked


async def test_a_gemini_caller_hears_its_candidate_count_named(gemini: genai.Client) -> None:
    settings = types.GenerateContentConfig(candidate_count=2)
    with pytest.raises(errors.ClientError) as refused:
        await gemini.aio.models.generate_content(model="sonnet", contents="hi", config=settings)

    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert "'generationConfig.candidateCount'" in str(refused.value.message)


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_responses_caller_hears_its_include_named(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    """`message.output_text.logprobs` is how a Responses caller asks for them: its 400 names
    `include`, the field it sent, not chat's `logprobs`."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.responses.create(
            model="sonnet", input="hi", include=["message.output_text.logprobs"], stream=streaming
        )

    assert refused.value.param == "include"
    assert "'include'" in refused.value.message and "'logprobs'" not in refused.value.message
    assert fake.state.count() == 0


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_a_gemini_callers_logprobs_alone_is_named_not_response_logprobs(
    gemini: genai.Client, streaming: bool
) -> None:
    """`generationConfig.logprobs` alone asks for logprobs too (the entrance asks
    `responseLogprobs` for it): its 400 names the field the caller sent."""
    settings = types.GenerateContentConfig(logprobs=3)
    with pytest.raises(errors.ClientError) as refused:
        if streaming:
            stream = gemini.aio.models.generate_content_stream
            async for _ in await stream(model="sonnet", contents="hi", config=settings):
                pass
        else:
            await gemini.aio.models.generate_content(model="sonnet", contents="hi", config=settings)

    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert "'generationConfig.logprobs'" in str(refused.value.message)
    assert "responseLogprobs" not in str(refused.value.message)
