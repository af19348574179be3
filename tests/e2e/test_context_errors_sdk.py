"""A prompt over every deployment's context, as the official SDK sees it through the edge: the
caller's 400 (`context_length_exceeded`), whatever status the upstream said it with; a 500 would
be retried by the SDK, and read as the service's failure."""

from __future__ import annotations

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.providers.test_stream_wire_shapes import LLAMA_CPP_TOO_LONG


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(base_config(fake.base_url))


@pytest.mark.parametrize("stream", [False, True])
async def test_a_context_error_said_with_a_500_is_the_callers_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    # llama.cpp's first builds with exceed_context_size_error answered it with a 500.
    fake.state.set_scenario(Scenario(status=500, error_body={"error": LLAMA_CPP_TOO_LONG}))
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(
            model="chain", messages=[{"role": "user", "content": "a long prompt"}], stream=stream
        )
    assert refused.value.status_code == 400
    assert refused.value.code == "context_length_exceeded"
    assert "available context size" in refused.value.message
