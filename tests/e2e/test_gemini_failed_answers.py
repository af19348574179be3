"""A Gemini candidate that ends with MALFORMED_FUNCTION_CALL (a function call Gemini could not
parse) or UNEXPECTED_TOOL_CALL (a call of a tool the request did not declare) is a failed
answer, not an empty one: the request goes on to the group's next deployment, or, with none,
the caller gets an OpenAI error; the deployment is neither cooled nor counted as failing (one
answer's failure). Streamed and unary, through gRPC and the OpenAI SDK against the edge."""

from __future__ import annotations

from typing import Any

import grpc
import openai
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.profiles import BY_KIND
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.server.test_routing import ask

REASONS = [
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE",
    "MALFORMED_RESPONSE",
]
SAID = "Malformed function call: print(default_api.get_weather(city=))"


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`group`: Gemini, then an OpenAI-format deployment; `gemini`: Gemini alone."""
    config: dict[str, Any] = base_config(fake.base_url)
    config["providers"]["gem"] = BY_KIND["gemini"].provider(fake, ["k-1"])
    gemini = {"provider": "gem", "model": "gemini-up"}
    beta = {"provider": "beta", "model": "model-b"}
    config["models"]["group"] = {"deployments": [gemini, beta]}
    config["models"]["gemini"] = {"deployments": [gemini]}
    return await start_router(config)


async def _served(
    router: RouterHandle, model: str, stream: bool, text: str = "hi"
) -> tuple[str, str]:
    """(the deployment that served, its text) of one chat through gRPC."""
    chat = ask(model=model, text=text)
    if not stream:
        answer = await router.stub.Chat(chat)
        return answer.route.deployment, answer.completion.choices[0].message.text
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    served, said = "", []
    async for event in router.stub.ChatStream(request):
        if event.HasField("route"):
            served = event.route.deployment
        if event.HasField("chunk"):
            said += [c.delta.text for c in event.chunk.choices]
        if event.HasField("error"):
            raise AssertionError(f"the stream failed: {event.error}")
    return served, "".join(said)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("reason", REASONS)
async def test_a_failed_gemini_answer_falls_back_and_cools_nothing(
    router: RouterHandle, fake: FakeUpstream, reason: str, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(finish_reason=reason), model="gemini-up")

    assert await _served(router, "group", stream) == ("beta/model-b", "Echo: hi")
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    gemini = next(d for d in stats.deployments if d.deployment == "gem/gemini-up")
    assert (gemini.cooldown_until_unix, gemini.failures) == (0, 0)
    fake.state.clear_scenarios()
    # Another conversation (the failed one skips gemini for a while: thread protection).
    assert (await _served(router, "group", stream, "bye"))[0] == "gem/gemini-up"


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_failed_gemini_answer_with_no_fallback_is_a_typed_error(
    router: RouterHandle, fake: FakeUpstream, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(finish_reason="MALFORMED_FUNCTION_CALL"), model="gemini-up")
    chat = ask(model="gemini")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        if stream:
            request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
            _ = [event async for event in router.stub.ChatStream(request)]
        else:
            await router.stub.Chat(chat)

    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "MALFORMED_FUNCTION_CALL" in (failed.value.details() or "")


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_the_openai_sdk_gets_an_openai_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    finish = Scenario(finish_reason="UNEXPECTED_TOOL_CALL")
    fake.state.set_scenario(finish, model="gemini-up")
    hello: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.InternalServerError) as failed:
        await sdk.chat.completions.create(model="gemini", messages=hello, stream=stream)

    assert failed.value.status_code == 503  # as any upstream's failure with no one left
    body: Any = failed.value.body
    assert body["type"] == "upstream_error" and "UNEXPECTED_TOOL_CALL" in body["message"]
