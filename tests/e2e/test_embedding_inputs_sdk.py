"""What an embeddings caller may send, as the official `openai` SDK sends it → the HTTP edge →
the router → the fake upstream, whichever kind serves the group: OpenAI's own, or one whose
adapter cuts the inputs into calls of its own (Cohere, the Gemini API)."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream import _responses as R
from router_service.fake_upstream._cohere import embedded
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge

pytestmark = pytest.mark.timeout(30)

GROUPS = ("openai-embed", "cohere-embed", "gemini-embed")


def config(fake: FakeUpstream) -> dict[str, Any]:
    return {
        "providers": {
            "alpha": {"base_url": fake.base_url, "keys": ["sk-alpha-1"]},
            "co": {"kind": "cohere", "base_url": fake.url, "keys": ["co-key"]},
            "gem": {"kind": "gemini", "base_url": f"{fake.url}/v1beta", "keys": ["g-key"]},
        },
        "models": {
            "openai-embed": {
                "deployments": [{"provider": "alpha", "model": "text-embedding-3-small"}]
            },
            "cohere-embed": {"deployments": [{"provider": "co", "model": "embed-v4.0"}]},
            "gemini-embed": {"deployments": [{"provider": "gem", "model": "text-embedding-004"}]},
        },
        "server": {"port": 0},
    }


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.mark.parametrize("model", GROUPS)
async def test_an_empty_input_is_a_bad_request_at_every_kind(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle, model: str
) -> None:
    """OpenAI refuses `input: []`; Cohere's and Gemini's adapters made no call for it and
    answered 200 with no vector, which a caller zipping inputs with vectors takes as done."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.embeddings.create(model=model, input=[])
    assert refused.value.param == "input"
    assert fake.state.count() == 0
    assert await router.leases_held() == 0


@pytest.fixture
async def http(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[httpx.AsyncClient]:
    edge = await start_edge(router)
    headers = {"authorization": "Bearer sk-caller"}
    async with httpx.AsyncClient(base_url=edge.base_url, headers=headers, timeout=10) as session:
        yield session


async def test_base64_is_answered_as_base64_when_the_upstream_sends_floats(
    http: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    """SGLang, Infinity, LM Studio and older Ollama answer floats whatever `encoding_format`
    asks; a caller that asked base64 (openai-node and openai-dotnet always do, and decode the
    string: a list of 1,024 floats read as base64 is 256 of them) got the list as it came."""
    fake.state.set_scenario(Scenario(floats_only=True))
    body = {"model": "openai-embed", "input": ["alpha", "beta"], "encoding_format": "base64"}

    answer = (await http.post("/v1/embeddings", json=body)).raise_for_status().json()

    packed = [base64.b64decode(item["embedding"]) for item in answer["data"]]
    vectors = [list(struct.unpack(f"<{len(raw) // 4}f", raw)) for raw in packed]
    dims = R.DEFAULT_EMBEDDING_DIMS
    assert vectors == [R.embedding_vector(text, dims) for text in ("alpha", "beta")]
    assert fake.state.last().body["encoding_format"] == "base64"  # type: ignore[union-attr]


async def test_a_cohere_callers_embedding_type_is_the_one_answered(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle
) -> None:
    """`embedding_types` is the caller's own Cohere field, sent as it is: Cohere then answers
    only that type, and the adapter read `float` from every answer, found none and took it for
    the deployment's failure, cooling it for every caller."""
    extra = {"embedding_types": ["int8"]}
    answer = await sdk.embeddings.create(model="cohere-embed", input=["a", "b"], extra_body=extra)

    dims = R.DEFAULT_EMBEDDING_DIMS
    assert [item.embedding for item in answer.data] == [embedded(t, dims, "int8") for t in "ab"]
    assert fake.state.last().body["embedding_types"] == ["int8"]  # type: ignore[union-attr]
    plain = await sdk.embeddings.with_raw_response.create(model="cohere-embed", input="a")
    assert plain.headers["x-switchboard-deployment"] == "co/embed-v4.0"  # not cooled


@pytest.mark.parametrize("kinds", [["float", "int8"], ["base64"], "int8"])
async def test_embedding_types_the_answer_cannot_carry_are_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle, kinds: Any
) -> None:
    """One vector per input, of numbers: several types, or one of no numbers, is the caller's
    400 naming the field, and no call to Cohere."""
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.embeddings.create(
            model="cohere-embed", input="a", extra_body={"embedding_types": kinds}
        )
    assert refused.value.param == "embedding_types"
    assert fake.state.count() == 0


@pytest.mark.parametrize("texts", [["query"], ["a", "b"]], ids=["embed", "batch"])
async def test_a_gemini_callers_own_fields_go_into_each_request(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, texts: list[str]
) -> None:
    """README: a caller's field OpenAI does not define is passed to the provider unchanged. The
    Gemini adapter dropped them: a query's `taskType: RETRIEVAL_QUERY` never reached Gemini,
    and the caller got a document's vector without a word; nor may one replace the input."""
    extra = {"taskType": "RETRIEVAL_QUERY", "content": {"parts": [{"text": "not the input"}]}}

    answer = await sdk.embeddings.create(model="gemini-embed", input=texts, extra_body=extra)

    dims = R.DEFAULT_EMBEDDING_DIMS
    expected = [pytest.approx(R.embedding_vector(t, dims), abs=1e-6) for t in texts]
    assert [item.embedding for item in answer.data] == expected
    body = fake.state.last().body  # type: ignore[union-attr]
    sent = body["requests"] if len(texts) > 1 else [body]
    assert [r["taskType"] for r in sent] == ["RETRIEVAL_QUERY"] * len(texts)
    assert [r["content"] for r in sent] == [{"parts": [{"text": t}]} for t in texts]


async def test_values_beyond_float32_reach_the_sdk_as_its_infinities(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle
) -> None:
    """The SDK asks base64 and reads float32: a value past its range is ±inf, as a float32 cast
    (OpenAI's encoder) gives it. `struct.pack` refused it: the caller got a 500."""
    fake.state.set_scenario(Scenario(embedding=[1e39, -1e39, 0.25]))

    packed = await sdk.embeddings.create(model="openai-embed", input="a")
    listed = await sdk.embeddings.create(model="openai-embed", input="a", encoding_format="float")

    assert packed.data[0].embedding == [math.inf, -math.inf, 0.25]
    assert listed.data[0].embedding == [1e39, -1e39, 0.25]  # the upstream's numbers, as sent


async def test_an_upstreams_malformed_base64_is_a_typed_upstream_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle
) -> None:
    """Five bytes are no float32 vector: the upstream's failure (503, UPSTREAM_ERROR naming
    base64), never a vector the SDK cannot decode, nor our 500."""
    fake.state.set_scenario(Scenario(embedding="AAAAAAA="))

    with pytest.raises(openai.APIStatusError) as failed:
        await sdk.embeddings.create(model="openai-embed", input="a", encoding_format="base64")

    assert failed.value.status_code == 503
    assert "base64" in failed.value.message and "Traceback" not in failed.value.message
