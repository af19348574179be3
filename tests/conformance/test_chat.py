"""Every adapter, through the real router over gRPC: chat, streams, tools, images, usage,
embeddings and the model list, each checked on the wire the provider actually received."""

from __future__ import annotations

import grpc
import orjson
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses import embedding_vector
from router_service.keys import fingerprint
from router_service.outcomes import Outcome
from tests.conformance.helpers import (
    PNG_B64,
    WEATHER_TOOL,
    chat,
    chunks,
    finish_reasons,
    params,
    stream,
    streamed_text,
    streamed_tool_calls,
)
from tests.conformance.profiles import KEYS, Profile
from tests.conftest import RouterHandle


async def test_plain_chat(router: RouterHandle, fake: FakeUpstream, profile: Profile) -> None:
    p = params(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        stop=["END"],
        max_tokens=50,
        temperature=0.2,
    )
    response = await chat(router, p)

    choice = response.completion.choices[0]
    assert choice.message.role == chat_pb2.ROLE_ASSISTANT
    assert choice.message.text == "Echo: hello there"
    assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert response.completion.usage.prompt_tokens > 0
    assert response.completion.usage.completion_tokens == 3
    assert response.route.deployment == "up/m-up"
    assert [a.outcome for a in response.route.attempts] == [routing_pb2.OUTCOME_OK]
    record = fake.state.last(model="m-up")
    assert record is not None and record.key in KEYS  # read from the provider's own auth header
    assert response.route.attempts[0].key_fingerprint == fingerprint(
        profile.secret(fake, record.key)
    )
    seen = profile.read(record.body)
    assert (seen.system, seen.texts, seen.stop, seen.max_tokens) == (
        "Be brief.",
        ["hello there"],
        ["END"],
        50,
    )


async def test_stream_with_usage(router: RouterHandle, profile: Profile) -> None:
    events = await stream(
        router, params(text="one two three", stream_options={"include_usage": True})
    )

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "route" and kinds[-1] == "summary"
    assert set(kinds[1:-1]) == {"chunk"}
    assert streamed_text(events) == "Echo: one two three"
    assert finish_reasons(events) == [chat_pb2.FINISH_REASON_STOP]
    assert len({c.id for c in chunks(events)}) == 1
    assert chunks(events)[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    usage = [c.usage for c in chunks(events) if c.HasField("usage")]
    assert len(usage) == 1 and usage[0].completion_tokens == 4
    assert events[-1].summary.usage.completion_tokens == 4
    assert events[-1].summary.route.deployment == "up/m-up"


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_tool_call_round_trip(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, streaming: bool
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    question = {"role": "user", "content": "what is the weather"}
    first = params(messages=[question], tools=[WEATHER_TOOL])

    if streaming:
        events = await stream(router, first)
        calls = streamed_tool_calls(events)
        assert finish_reasons(events) == [chat_pb2.FINISH_REASON_TOOL_CALLS]
    else:
        message = (await chat(router, first)).completion.choices[0]
        assert message.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
        calls = [
            (c.id, c.function.name, orjson.loads(c.function.arguments))
            for c in message.message.tool_calls
        ]
    assert [(name, args) for _, name, args in calls] == [("get_weather", {"city": "Paris"})]
    call_id = calls[0][0]
    assert call_id
    record = fake.state.last(model="m-up")
    assert record is not None
    assert profile.read(record.body).tools == ["get_weather"]

    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": call_id, "content": "22 degrees"}
    second = params(messages=[question, assistant, result], tools=[WEATHER_TOOL])
    if streaming:
        answer = streamed_text(await stream(router, second))
    else:
        answer = (await chat(router, second)).completion.choices[0].message.text
    assert answer == "Echo: what is the weather"  # the tool answered: the model replies in text

    record = fake.state.last(model="m-up")
    assert record is not None
    seen = profile.read(record.body)
    assert seen.tool_calls == [("get_weather", {"city": "Paris"})]
    assert seen.tool_results == ["22 degrees"]
    # Every kind answers a tool's result by the call's id (Vertex AI v1 keeps functionResponse.id).
    assert seen.tool_refs == [call_id]


async def test_image_parts(router: RouterHandle, fake: FakeUpstream, profile: Profile) -> None:
    content = [
        {"type": "text", "text": "what is in these"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    if not profile.links_images:
        # A linked image this format cannot carry: passed over without a call, the caller's
        # 400 when no other deployment takes it; the same image as data reaches it.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chat(router, params(messages=[{"role": "user", "content": content}]))
        assert details_from_rpc_error(caught.value).reason == "UNSUPPORTED_INPUT"
        assert fake.state.count() == 0
        content = content[:2]
    response = await chat(router, params(messages=[{"role": "user", "content": content}]))

    assert response.completion.choices[0].message.text == "Echo: what is in these"
    record = fake.state.last(model="m-up")
    assert record is not None
    seen = profile.read(record.body)
    links = ["https://example.com/cat.png"] if profile.links_images else []
    assert seen.images == [PNG_B64, *links]


async def test_embeddings(router: RouterHandle, fake: FakeUpstream, profile: Profile) -> None:
    request = pb.EmbedRequest(
        params=embeddings_pb2.EmbeddingParams(
            model="vectors",
            texts=embeddings_pb2.TextList(values=["alpha", "beta"]),
            dimensions=profile.embedding_dimensions,
        )
    )
    if not profile.embeds:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Embed(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Anthropic cannot express an embedding: nothing is sent, and with no other deployment
        # in the group the caller gets the 400.
        assert details_from_rpc_error(caught.value).reason == "UNSUPPORTED_INPUT"
        assert fake.state.count() == 0
        return

    response = await router.stub.Embed(request)

    vectors = [list(e.values) for e in response.result.data]
    assert [e.index for e in response.result.data] == [0, 1]
    size = profile.embedding_dimensions
    assert vectors == [
        pytest.approx(embedding_vector(text, size), abs=1e-6) for text in ("alpha", "beta")
    ]
    assert response.route.deployment == f"up/{profile.embedding_model}"


async def test_single_text_embedding_as_base64(
    router: RouterHandle, fake: FakeUpstream, profile: Profile
) -> None:
    request = pb.EmbedRequest(
        params=embeddings_pb2.EmbeddingParams(
            model="vectors", text="alpha", encoding_format="base64"
        )
    )
    if not profile.embeds:  # no embeddings API: refused as a list of texts is, nothing sent
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Embed(request)
        assert details_from_rpc_error(caught.value).reason == "UNSUPPORTED_INPUT"
        assert fake.state.count() == 0
        return
    response = await router.stub.Embed(request)
    assert [e.HasField("base64") for e in response.result.data] == [True]


async def test_list_models_probes_the_key(
    router: RouterHandle, fake: FakeUpstream, profile: Profile
) -> None:
    adapter = router.runtime.adapters["up"]

    assert await adapter.list_models("k-1", 5.0) == fake.state.models
    record = fake.state.last()
    assert record is not None and record.key == "k-1"

    fake.state.set_scenario(Scenario.invalid_key(style="native"), key="k-2")
    with pytest.raises(UpstreamFailure) as caught:
        await adapter.list_models("k-2", 5.0)
    assert caught.value.outcome is Outcome.AUTH_INVALID


# The kinds whose answers say what they wrote to their prompt cache (Anthropic's bodies,
# direct or on Vertex AI, and Bedrock Converse); Gemini's usage has no such count.
CACHE_WRITERS = frozenset({"anthropic", "vertex-anthropic", "bedrock"})


@pytest.mark.parametrize("streamed", [False, True])
async def test_prompt_cache_writes(
    router: RouterHandle, fake: FakeUpstream, profile: Profile, streamed: bool
) -> None:
    writes = Scenario(cached_tokens=2, cache_write_tokens=8, cache_write_1h_tokens=3)
    fake.state.set_scenario(writes, model="m-up")
    if streamed:
        p = params(text="one two three", stream_options={"include_usage": True})
        events = await stream(router, p)
        usage = events[-1].summary.usage
    else:
        usage = (await chat(router, params(text="one two three"))).completion.usage
    details = usage.prompt_tokens_details
    expected = (8, 3) if str(profile) in CACHE_WRITERS else (0, 0)
    assert (details.cache_write_tokens, details.cache_write_1h_tokens) == expected
    assert usage.prompt_tokens >= details.cached_tokens + details.cache_write_tokens
