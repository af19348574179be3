"""What an embeddings caller may send, as the official `openai` SDK sends it → the HTTP edge →
the router → the fake upstream, whichever kind serves the group: OpenAI's own, or one whose
adapter cuts the inputs into calls of its own (Cohere, the Gemini API)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter

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
