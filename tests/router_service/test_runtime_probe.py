"""A disabled key's completion probe calls its deployment on that deployment's API: a
Responses-only model on the Responses API, with the least `max_output_tokens` it takes."""

from __future__ import annotations

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config


async def test_a_completion_probe_of_a_responses_deployment_is_a_response(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = base_config(fake.base_url, key_health={"probe": "completion"})
    config["models"] = {"pro": {"deployments": [{"provider": "alpha", "model": "gpt-5-pro"}]}}
    router = await start_router(config)
    runtime = router.runtime

    await runtime._probe_fn(runtime.adapters["alpha"])(runtime.pools["alpha"].keys[0])

    [call] = fake.state.calls()
    assert (call.path, call.status) == ("/v1/responses", 200)
    assert call.body["max_output_tokens"] == 16
