"""A bedrock deployment as users run one: IAM credentials in the key pool, each request signed
with SigV4 and verified by the fake upstream with its secret; model ids that are inference
profile ids (`…:0`) and ARNs (`…/…`), URL-encoded in the path and signed as sent. The official
`openai` SDK streams a tool call through the edge from it; a wrong secret or session token is a
disabled key, never a secret in an error or a log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import openai
import pytest

from clients import details_from_rpc_error
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    FakeUpstream,
    Scenario,
)
from router_service.fake_upstream._cohere import embedded
from router_service.fake_upstream._responses import embedding_vector
from tests.conformance.helpers import WEATHER_TOOL, chat, params, stream, streamed_text
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge

GOOD = f"{FAKE_AWS_ACCESS_KEY_ID}:{FAKE_AWS_SECRET_ACCESS_KEY}"
WRONG_SECRET = "wrongSecretKey/For+SigV4+Tests000000000000"
PROFILE_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
COHERE_EMBED = "cohere.embed-multilingual-v3"
TEMPORARY_ID, TEMPORARY_SECRET, TOKEN = (
    "ASIAFAKEUPSTREAM0002",
    "tempSecret/0002",
    "session+token/2==",
)


def bedrock_config(fake: FakeUpstream, keys: dict[str, list[str]]) -> dict[str, Any]:
    """One bedrock provider per entry of `keys`, each with a group `<name>-chat` on PROFILE_ID,
    `<name>-arn` on ARN and `<name>-embed` on a Cohere Embed model."""
    providers = {
        name: {"kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": pool}
        for name, pool in keys.items()
    }
    models: dict[str, Any] = {}
    for name in keys:
        models[f"{name}-chat"] = {"deployments": [{"provider": name, "model": PROFILE_ID}]}
        models[f"{name}-arn"] = {"deployments": [{"provider": name, "model": ARN}]}
        models[f"{name}-embed"] = {"deployments": [{"provider": name, "model": COHERE_EMBED}]}
    return {"providers": providers, "models": models, "server": {"port": 0}}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    fake.state.aws_credentials[TEMPORARY_ID] = (TEMPORARY_SECRET, TOKEN)
    return await start_router(
        bedrock_config(
            fake,
            {
                "iam": [GOOD],
                "wrong": [f"{FAKE_AWS_ACCESS_KEY_ID}:{WRONG_SECRET}"],
                "temporary": [f"{TEMPORARY_ID}:{TEMPORARY_SECRET}:{TOKEN}"],
                "stale": [f"{TEMPORARY_ID}:{TEMPORARY_SECRET}:expired-token"],
            },
        )
    )


@pytest.mark.parametrize("model", ["iam-chat", "iam-arn", "temporary-chat"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_signed_requests_are_verified_by_the_upstream(
    router: RouterHandle, fake: FakeUpstream, model: str, streaming: bool
) -> None:
    if streaming:
        text = streamed_text(await stream(router, params(model)))
    else:
        text = (await chat(router, params(model))).completion.choices[0].message.text

    assert text == "Echo: hello there"
    record = fake.state.last()
    assert record is not None and record.status == 200
    upstream_model = ARN if model.endswith("-arn") else PROFILE_ID
    assert record.model == upstream_model  # decoded from the path it was encoded into
    assert record.path.endswith("/converse-stream" if streaming else "/converse")
    authorization = record.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/bedrock/aws4_request" in authorization
    assert FAKE_AWS_SECRET_ACCESS_KEY not in str(record.headers)
    assert TEMPORARY_SECRET not in str(record.headers)


@pytest.mark.parametrize("model", ["wrong-chat", "stale-chat"])
async def test_credentials_the_upstream_refuses_disable_the_key(
    router: RouterHandle, fake: FakeUpstream, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params(model))

    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.upstream_status) == ("AUTH_INVALID", 403)
    assert fake.state.count() == 1
    # The key is disabled: the next call does not reach the upstream with it.
    with pytest.raises(grpc.aio.AioRpcError):
        await chat(router, params(model))
    assert fake.state.count() == 1
    for secret in (WRONG_SECRET, TEMPORARY_SECRET, "expired-token"):
        assert secret not in str(caught.value.details())
        assert secret not in caught.value.debug_error_string()
        assert secret not in caplog.text


async def test_the_model_list_probe_is_signed(router: RouterHandle, fake: FakeUpstream) -> None:
    assert await router.runtime.adapters["iam"].list_models(GOOD, 5.0) == fake.state.models
    with pytest.raises(UpstreamFailure) as caught:
        await router.runtime.adapters["wrong"].list_models(f"{FAKE_AWS_ACCESS_KEY_ID}:x", 5.0)
    assert caught.value.outcome.name == "AUTH_INVALID"


@pytest.fixture
async def sdk(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


async def test_the_openai_sdk_streams_a_tool_call_from_a_signed_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    stream = await sdk.chat.completions.create(
        model="iam-chat",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert [d.function.name for d in deltas if d.function and d.function.name] == ["get_weather"]
    assert {d.index for d in deltas} == {0}
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    record = fake.state.last()
    assert record is not None and record.key == FAKE_AWS_ACCESS_KEY_ID and record.status == 200
    assert record.body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"

    # The tool's answer goes back as a toolResult; the model answers in text.
    call = deltas[0]
    follow_up = await sdk.chat.completions.create(
        model="iam-chat",
        messages=[
            {"role": "user", "content": "weather in Oslo?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": str(call.id),
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": str(call.id), "content": "3 degrees"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "Echo: weather in Oslo?"
    record = fake.state.last()
    assert record is not None
    result = record.body["messages"][-1]["content"][0]["toolResult"]
    assert (result["toolUseId"], result["content"]) == (call.id, [{"text": "3 degrees"}])


async def test_the_openai_sdk_embeds_through_a_signed_cohere_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    result = await sdk.embeddings.create(
        model="iam-embed", input=["alpha", "beta"], extra_body={"input_type": "search_query"}
    )

    # The SDK asked for base64 (its default) and decoded the float32 the router packed.
    assert [item.embedding for item in result.data] == [
        pytest.approx(embedding_vector(text, 8), abs=1e-6) for text in ("alpha", "beta")
    ]
    record = fake.state.last()
    assert record is not None and (record.key, record.status) == (FAKE_AWS_ACCESS_KEY_ID, 200)
    assert record.path == f"/model/{COHERE_EMBED}/invoke"
    assert record.body["texts"] == ["alpha", "beta"]
    assert record.body["input_type"] == "search_query"  # the caller's own field, as sent


async def test_a_cohere_embed_callers_embedding_type_is_the_one_answered(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The caller's own `embedding_types` went into the body as sent, and only `float` was read
    of the answer (Cohere Embed answers the types asked): the deployment's failure, cooled."""
    extra = {"embedding_types": ["int8"]}
    result = await sdk.embeddings.create(model="iam-embed", input=["a", "b"], extra_body=extra)

    assert [item.embedding for item in result.data] == [embedded(t, 8, "int8") for t in "ab"]
    assert fake.state.last().body["embedding_types"] == ["int8"]  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.embeddings.create(
            model="iam-embed", input="a", extra_body={"embedding_types": ["int8", "float"]}
        )
    assert refused.value.param == "embedding_types"


async def test_a_callers_own_texts_field_does_not_replace_the_batch(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """A caller's field of the body's own name (`texts`) replaced the batch the router cut: one
    vector for two inputs, the deployment's malformed answer, cooled for every caller."""
    result = await sdk.embeddings.create(
        model="iam-embed", input=["alpha", "beta"], extra_body={"texts": ["x"]}
    )

    assert len(result.data) == 2
    assert fake.state.last().body["texts"] == ["alpha", "beta"]  # type: ignore[union-attr]
