"""Ollama's `/api/embed` `truncate` (https://docs.ollama.com/api/embed: true by default, an
input past the model's context length is cut to it; false, such an input is an error), through
the `ollama` client: a deployment's context-length refusal is asked again with the input cut
(`truncation: auto`), or is the caller's 400 when it said false."""

from __future__ import annotations

from collections.abc import AsyncIterator

import ollama
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_ollama_sdk import edge_url, router, sent  # noqa: F401

LONG = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
async def ollama_client(edge_url: str) -> AsyncIterator[ollama.AsyncClient]:  # noqa: F811
    client = ollama.AsyncClient(host=edge_url, headers={"Authorization": "Bearer sk-caller"})
    yield client
    await client._client.aclose()


@pytest.mark.parametrize("truncate", [None, True])
async def test_an_input_past_the_context_length_is_cut(
    ollama_client: ollama.AsyncClient, fake: FakeUpstream, truncate: bool | None
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    answer = await ollama_client.embed(model="embedder", input=[LONG, "short"], truncate=truncate)
    assert len(answer.embeddings) == 2
    cut, short = sent(fake)["input"]
    assert LONG.startswith(cut) and len(cut.split()) <= 12 and short == "short"


async def test_with_truncate_false_it_is_the_callers_400(
    ollama_client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(context_window=12))
    with pytest.raises(ollama.ResponseError) as refused:
        await ollama_client.embed(model="embedder", input=LONG, truncate=False)
    assert refused.value.status_code == 400
    assert "context length" in refused.value.error
    assert sent(fake)["input"] == LONG  # asked once, whole
