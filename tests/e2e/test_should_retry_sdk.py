"""`x-should-retry` for an upstream's 409 through the whole stack: the openai SDK → the edge →
the router → the fake upstream answering 409 (OpenAI's lock timeout). The router passes the
conflict to the caller as the request's (it does not fail over), and the edge tells the SDK to
retry it, as the openai SDK does of its own accord for a 409 of OpenAI's (the SDK's attempts
are counted in tests/http_edge/test_should_retry.py)."""

from __future__ import annotations

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.e2e.stream_harness import StartEdge

pytestmark = pytest.mark.timeout(30)
LOCKED = {
    "error": {
        "message": "Another request is currently operating on this resource",
        "type": "invalid_request_error",
        "param": None,
        "code": "conflict",
    }
}


async def test_an_upstreams_409_is_worth_a_retry(
    router: RouterHandle, start_edge: StartEdge, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(status=409, error_body=LOCKED))
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        with pytest.raises(openai.ConflictError) as caught:
            await sdk.chat.completions.create(
                model="chain", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.response.headers["x-should-retry"] == "true"
    assert caught.value.code == "conflict"
    assert fake.state.count(path="/v1/chat/completions") == 1  # passed on: no fail-over
