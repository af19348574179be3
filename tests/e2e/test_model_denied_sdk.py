"""A model no upstream key may use, as an OpenAI SDK user meets it through the edge: a 403
`permission_error` (`model_denied`), unary and streamed, no Retry-After nor retry advised; not
a 429 telling it to come back in a day."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.test_key_throttle_sdk import StartEdge
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_model_denied import deny
from tests.router_service.server.test_key_pools import one_provider

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(60)

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_model_every_key_is_denied_is_a_403_for_the_sdk(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    state_section: dict[str, str],
    stream: bool,
) -> None:
    config = one_provider(fake.base_url, ["k1", "k2"])
    config["state"] = state_section
    config["auth"] = {"open": True}
    edge = await start_edge(await start_router(config))
    deny(fake, "k1")
    deny(fake, "k2")

    sdk = openai.AsyncOpenAI(base_url=f"{edge.base_url}/v1", api_key="x", max_retries=3)
    async with sdk:
        for _ in range(2):  # the call that met the refusals, and one after
            with pytest.raises(openai.PermissionDeniedError) as caught:
                await sdk.chat.completions.create(model="a", messages=HI, stream=stream)
            refused = caught.value
            assert refused.status_code == 403 and refused.code == "model_denied"
            assert refused.type == "permission_error"
            assert "retry-after" not in refused.response.headers
            assert refused.response.headers.get("x-should-retry") != "true"
            assert "k1" not in refused.response.text and "k2" not in refused.response.text
    assert [fake.state.count(key=k, model="model-a") for k in ("k1", "k2")] == [1, 1]
