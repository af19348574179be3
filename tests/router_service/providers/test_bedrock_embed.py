"""Bedrock embeddings through the router, against the fake upstream's InvokeModel: Titan's one
call per text (concurrent, answered in order, token counts summed), Cohere's batches of 96
signed with SigV4, the dimensions each family gives, what Bedrock cannot embed passed on
before anything is sent, and failures classified as the chat path classifies them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import embeddings_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.errors import UpstreamFailure
from router_service.fake_upstream import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    FakeUpstream,
    Scenario,
)
from router_service.fake_upstream._responses import count_words, embedding_vector
from router_service.outcomes import Outcome
from router_service.providers._batched import in_order
from tests.conftest import RouterHandle, StartRouter

TITAN = "amazon.titan-embed-text-v2:0"
CHAT_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
IAM = f"{FAKE_AWS_ACCESS_KEY_ID}:{FAKE_AWS_SECRET_ACCESS_KEY}"
WRONG_SECRET = "wrongSecretKey/For+SigV4+Tests000000000000"


def _bedrock(fake: FakeUpstream, keys: list[str]) -> dict[str, Any]:
    return {"kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": keys}


def _group(*deployments: tuple[str, str]) -> dict[str, Any]:
    return {"deployments": [{"provider": p, "model": m} for p, m in deployments]}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    providers = {
        "api": _bedrock(fake, ["kb-1", "kb-2"]),
        "iam": _bedrock(fake, [IAM]),
        "wrong": _bedrock(fake, [f"{FAKE_AWS_ACCESS_KEY_ID}:{WRONG_SECRET}"]),
        "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
    }
    models = {
        "titan": _group(("api", TITAN)),
        "titan-v1": _group(("api", "amazon.titan-embed-text-v1")),
        "cohere": _group(("iam", "cohere.embed-english-v3")),
        "cohere-v4": _group(("api", "us.cohere.embed-v4:0")),
        "chat-only": _group(("api", CHAT_MODEL)),
        "chat-then-openai": _group(("api", CHAT_MODEL), ("backup", "e-backup")),
        "titan-wrong-secret": _group(("wrong", TITAN)),
    }
    return await start_router({"providers": providers, "models": models, "server": {"port": 0}})


def request(model: str, texts: list[str], **fields: Any) -> pb.EmbedRequest:
    values = embeddings_pb2.TextList(values=texts)
    return pb.EmbedRequest(
        params=embeddings_pb2.EmbeddingParams(model=model, texts=values, **fields)
    )


async def refused(router: RouterHandle, embed: pb.EmbedRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Embed(embed)
    return caught.value


async def test_titan_embeds_each_text_in_its_own_call(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    texts = ["alpha", "beta gamma", "delta epsilon zeta", "eta"]

    response = await router.stub.Embed(request("titan", texts, dimensions=512))

    assert [list(e.values) for e in response.result.data] == [
        pytest.approx(embedding_vector(text, 512), abs=1e-6) for text in texts
    ]
    assert [e.index for e in response.result.data] == [0, 1, 2, 3]
    assert response.result.usage.prompt_tokens == sum(count_words(t) for t in texts) == 7
    calls = fake.state.calls()
    assert {r.path for r in calls} == {"/model/amazon.titan-embed-text-v2:0/invoke"}
    assert sorted(r.body["inputText"] for r in calls) == sorted(texts)
    assert all(r.body.keys() == {"inputText", "dimensions", "normalize"} for r in calls)
    assert all((r.key, r.body["dimensions"], r.status) == ("kb-1", 512, 200) for r in calls)


async def test_cohere_embeds_in_batches_of_96_signed_with_sigv4(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    texts = [f"text {i}" for i in range(100)]

    response = await router.stub.Embed(request("cohere", texts, encoding_format="base64"))

    assert len(response.result.data) == 100
    assert all(e.HasField("base64") for e in response.result.data)
    assert response.result.usage.prompt_tokens == 200  # Bedrock's header, summed over calls
    calls = sorted(fake.state.calls(), key=lambda r: len(r.body["texts"]), reverse=True)
    assert [r.body["texts"] for r in calls] == [texts[:96], texts[96:]]
    for record in calls:
        assert record.status == 200  # the fake verified the signature
        assert record.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
        assert "/us-east-1/bedrock/aws4_request" in record.headers["Authorization"]
        assert record.body["input_type"] == "search_document"
        assert record.body["embedding_types"] == ["float"]


async def test_cohere_v4_takes_its_dimensions_and_the_callers_own_fields(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    embed = request("cohere-v4", ["find me"], dimensions=256)
    embed.params.extra_json = '{"input_type": "search_query"}'

    response = await router.stub.Embed(embed)

    assert list(response.result.data[0].values) == pytest.approx(
        embedding_vector("find me", 256), abs=1e-6
    )
    record = fake.state.last()
    assert record is not None and record.model == "us.cohere.embed-v4:0"
    assert (record.body["output_dimension"], record.body["input_type"]) == (256, "search_query")


@pytest.mark.parametrize(
    ("model", "fields", "says"),
    [
        ("chat-only", {}, "Amazon Titan Embeddings (amazon.titan-embed-…) and Cohere Embed"),
        ("titan", {"dimensions": 4}, "256, 512 or 1024 dimensions, not 4"),
        ("titan-v1", {"dimensions": 256}, "takes no dimensions"),
        ("cohere", {"dimensions": 512}, "1024 dimensions, not 512"),
        ("cohere-v4", {"dimensions": 100}, "256, 512, 1024 or 1536 dimensions, not 100"),
    ],
)
async def test_what_bedrock_cannot_embed_is_refused_before_sending(
    router: RouterHandle, fake: FakeUpstream, model: str, fields: dict[str, Any], says: str
) -> None:
    error = await refused(router, request(model, ["x"], **fields))

    details = details_from_rpc_error(error)
    assert (error.code(), details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_INPUT")
    assert says in details.message
    assert fake.state.count() == 0


async def test_token_inputs_are_refused_before_sending(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    tokens = embeddings_pb2.TokenList(values=[1, 2, 3])
    embed = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="titan", tokens=tokens))

    error = await refused(router, embed)

    assert details_from_rpc_error(error).reason == "UNSUPPORTED_INPUT"
    assert fake.state.count() == 0


async def test_a_chat_model_passes_the_request_to_the_groups_next_deployment(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    response = await router.stub.Embed(request("chat-then-openai", ["alpha"]))

    assert response.route.deployment == "backup/e-backup"
    assert [a.outcome for a in response.route.attempts] == [
        routing_pb2.OUTCOME_UNSUPPORTED_INPUT,
        routing_pb2.OUTCOME_OK,
    ]
    assert [r.path for r in fake.state.calls()] == ["/v1/embeddings"]


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [
        (Scenario.rate_limited(retry_after="7"), routing_pb2.OUTCOME_RATE_LIMITED),
        (Scenario.invalid_key(style="native"), routing_pb2.OUTCOME_AUTH_INVALID),
    ],
    ids=["throttled", "invalid_key"],
)
async def test_a_failed_call_of_a_fan_out_fails_the_key_and_the_next_key_embeds(
    router: RouterHandle, fake: FakeUpstream, scenario: Scenario, outcome: int
) -> None:
    fake.state.set_scenario(scenario, key="kb-1")
    texts = ["one", "two", "three"]

    response = await router.stub.Embed(request("titan", texts))

    assert [(a.outcome, a.upstream_status) for a in response.route.attempts] == [
        (outcome, 429 if outcome == routing_pb2.OUTCOME_RATE_LIMITED else 403),
        (routing_pb2.OUTCOME_OK, 200),
    ]
    assert len(response.result.data) == 3
    answered = [r for r in fake.state.calls() if r.key == "kb-2"]
    assert sorted(r.body["inputText"] for r in answered) == sorted(texts)


async def test_input_too_long_is_the_callers_context_error(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    too_long = "Too many input tokens. Max input tokens: 8192, request input token count: 9000"
    fake.state.set_scenario(Scenario(status=400, error_body={"message": too_long}))

    error = await refused(router, request("titan", ["long text"]))

    details = details_from_rpc_error(error)
    assert (details.reason, details.upstream_status) == ("CONTEXT_TOO_LONG", 400)
    assert fake.state.count() == 1  # the caller's: not tried with the other key


async def test_a_signature_the_upstream_refuses_disables_the_key_unshown(
    router: RouterHandle, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    error = await refused(router, request("titan-wrong-secret", ["a", "b"]))

    details = details_from_rpc_error(error)
    assert (details.reason, details.upstream_status) == ("AUTH_INVALID", 403)
    assert all(r.status == 403 for r in fake.state.calls())
    for shown in (str(error.details()), error.debug_error_string(), caplog.text):
        assert WRONG_SECRET not in shown


async def test_calls_run_at_most_the_limit_at_once_and_answer_in_order() -> None:
    """The fan-out helper: the calls finish in another order than given; the answers keep it."""
    gates = [asyncio.Event() for _ in range(20)]
    running: set[int] = set()
    peak = 0

    async def call(i: int) -> int:
        nonlocal peak
        running.add(i)
        peak = max(peak, len(running))
        await gates[i].wait()
        running.discard(i)
        return i

    task = asyncio.create_task(in_order([partial(call, i) for i in range(20)], 8))
    finished: list[int] = []
    while not task.done():
        await asyncio.sleep(0)  # a turn of the loop, not a wait for time to pass
        if running and not gates[max(running)].is_set():
            finished.append(max(running))  # the latest started finishes first
            gates[max(running)].set()

    assert task.result() == list(range(20))
    assert peak == 8
    assert finished != sorted(finished)


async def test_the_first_failure_cancels_the_other_calls_and_is_raised_as_it_is() -> None:
    # Those under way are cancelled; one not started yet is not made (its answer, sent and
    # billed, would be thrown away).
    cancelled: list[int] = []
    started: list[int] = []

    async def hangs(i: int) -> int:
        started.append(i)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    async def fails() -> int:
        raise UpstreamFailure(Outcome.RATE_LIMITED, "throttled")

    with pytest.raises(UpstreamFailure) as caught:
        calls: list[Callable[[], Awaitable[int]]] = [partial(hangs, 0), fails, partial(hangs, 2)]
        await in_order(calls, 8)

    assert caught.value.outcome is Outcome.RATE_LIMITED
    assert (started, cancelled) == ([0], [0])


@pytest.mark.parametrize(
    ("model", "sent"),
    [("titan", {"inputText": "x", "normalize": True}), ("titan-v1", {"inputText": "x"})],
)
async def test_titan_bodies_without_dimensions(
    router: RouterHandle, fake: FakeUpstream, model: str, sent: dict[str, Any]
) -> None:
    response = await router.stub.Embed(request(model, ["x"]))

    assert len(response.result.data[0].values) == 8  # the fake's default size
    record = fake.state.last()
    assert record is not None and record.body == sent


async def test_a_titan_callers_embedding_type_is_the_one_answered(
    router: RouterHandle, fake: FakeUpstream
) -> None:
    """Titan V2's own `embeddingTypes` went into the body as sent (README: a caller's own fields
    go as sent), and the adapter read `embedding`, which a `binary`-only answer lacks: the
    deployment's malformed answer, cooled for every caller, as Cohere's `embedding_types` was."""
    embed = request("titan", ["alpha", "beta"], dimensions=256)
    embed.params.extra_json = '{"embeddingTypes": ["binary"]}'

    response = await router.stub.Embed(embed)

    bits = [[1.0 if x > 0 else 0.0 for x in embedding_vector(t, 256)] for t in ("alpha", "beta")]
    assert [list(e.values) for e in response.result.data] == bits
    assert {r.body["embeddingTypes"] == ["binary"] for r in fake.state.calls()} == {True}


@pytest.mark.parametrize("kinds", [["float", "binary"], ["int8"], "binary"])
async def test_titan_embedding_types_the_answer_cannot_carry_are_refused(
    router: RouterHandle, fake: FakeUpstream, kinds: Any
) -> None:
    """One vector of numbers per input: several types, or one Titan has not, is the caller's
    UNSUPPORTED_INPUT naming the field, and no call."""
    embed = request("titan", ["x"])
    embed.params.extra_json = json.dumps({"embeddingTypes": kinds})

    error = await refused(router, embed)

    details = details_from_rpc_error(error)
    assert details.reason == "UNSUPPORTED_INPUT"
    assert details.upstream_error is not None
    assert details.upstream_error["param"] == "embeddingTypes"
    assert fake.state.count() == 0
