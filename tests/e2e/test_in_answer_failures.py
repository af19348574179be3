"""Failures an upstream reports inside an answer it had begun, through gRPC ChatStream against
the fake upstream speaking each provider's wire: whose failure each is (DESIGN.md §4). A rate
limit cools the key, an overloaded server the deployment (briefly, for everyone), and any other
server error is that one answer's: the request goes on to the group's next, and the deployment
is neither cooled nor counted as failing in the routing statistics for it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import media_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.profiles import BY_KIND
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.server.test_routing import ask

OVERLOADED = {
    "type": "server_error",
    "code": "server_is_overloaded",
    "message": "Our servers are currently overloaded. Please try again later.",
}
SERVER_ERROR = {
    "type": "server_error",
    "message": "The server had an error while processing your request. Sorry about that!",
}
GEMINI_INTERNAL = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
GEMINI_OVERLOADED = {
    "code": 503,
    "message": "The model is overloaded. Please try again later.",
    "status": "UNAVAILABLE",
}
# (the first deployment's provider kind, its model, the failure inside its answer, whether the
# deployment is cooled for everyone and counted as failing).
CASES = [
    ("anthropic", "up-1", {"type": "api_error", "message": "Internal server error"}, False),
    ("anthropic", "up-1", {"type": "overloaded_error", "message": "Overloaded"}, True),
    ("bedrock", "up-1", {"code": 424}, False),  # modelStreamErrorException
    ("bedrock", "up-1", {"code": 500}, False),  # internalServerException
    ("bedrock", "up-1", {"code": 503}, True),  # serviceUnavailableException
    ("bedrock", "up-1", {"code": 429}, False),  # throttlingException: the key's
    ("openai", "gpt-5-pro", {}, False),  # a failed Response: server_error
    ("openai", "gpt-5-pro", OVERLOADED, True),
    ("openai", "up-1", SERVER_ERROR, False),  # a chat stream's error event
    ("openai", "up-1", OVERLOADED, True),
    ("gemini", "gemini-up", GEMINI_INTERNAL, False),  # a Gemini stream's error
    ("gemini", "gemini-up", GEMINI_OVERLOADED, True),
]
IDS = [
    "anthropic-api_error",
    "anthropic-overloaded",
    "bedrock-modelStreamError",
    "bedrock-internalServer",
    "bedrock-serviceUnavailable",
    "bedrock-throttling",
    "responses-server_error",
    "responses-overloaded",
    "chat-server_error",
    "chat-overloaded",
    "gemini-internal",
    "gemini-overloaded",
]


async def _router(
    fake: FakeUpstream, start_router: StartRouter, kind: str, model: str
) -> RouterHandle:
    config: dict[str, Any] = base_config(fake.base_url)
    config["providers"]["first"] = BY_KIND[kind].provider(fake, ["k-1"])
    deployments = [{"provider": "first", "model": model}, {"provider": "beta", "model": "model-b"}]
    config["models"]["group"] = {"deployments": deployments}
    return await start_router(config)


async def _streamed(router: RouterHandle, text: str) -> tuple[str, str]:
    """(the deployment that served the stream, its text)."""
    chat = ask(model="group", text=text)
    stream = router.stub.ChatStream(pb.ChatStreamRequest(params=chat.params, routing=chat.routing))
    served, said = "", []
    async for event in stream:
        if event.HasField("route"):
            served = event.route.deployment
        if event.HasField("chunk"):
            said += [c.delta.text for c in event.chunk.choices]
    return served, "".join(said)


async def _status(router: RouterHandle, deployment: str) -> admin_pb.DeploymentStatus:
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    found: admin_pb.DeploymentStatus = next(
        d for d in stats.deployments if d.deployment == deployment
    )
    return found


@pytest.mark.parametrize(("kind", "model", "error", "deployments"), CASES, ids=IDS)
async def test_a_failure_inside_an_answer_is_scoped_by_what_it_says(
    fake: FakeUpstream,
    start_router: StartRouter,
    kind: str,
    model: str,
    error: dict[str, Any],
    deployments: bool,
) -> None:
    router = await _router(fake, start_router, kind, model)
    failing = Scenario(wrapped_error=error, wrapped_error_at_chunk=1)
    fake.state.set_scenario(failing, model=model)

    served, text = await _streamed(router, "hello")

    assert (served, text) == ("beta/model-b", "Echo: hello")  # on to the group's next
    status = await _status(router, f"first/{model}")
    assert (status.cooldown_until_unix > 0, status.failures) == (deployments, int(deployments))
    fake.state.clear_scenarios()
    served, _ = await _streamed(router, "another conversation")
    # The key's throttling cools its one key: the deployment is then beta's turn too, by the
    # key's cooldown (not the deployment's, asserted above).
    cooled = deployments or error.get("code") == 429
    assert served == ("beta/model-b" if cooled else f"first/{model}")


@pytest.mark.parametrize(
    ("error", "deployments"),
    [({"type": "api_error", "message": "Internal server error"}, False), ({}, True)],
    ids=["api_error", "overloaded_error"],
)
async def test_a_claude_stream_failing_after_its_text_is_scoped_alike(
    fake: FakeUpstream, start_router: StartRouter, error: dict[str, Any], deployments: bool
) -> None:
    """After text reached the caller the stream ends with an error event (no failover); the
    deployment is cooled and counted for an overload only."""
    router = await _router(fake, start_router, "anthropic", "up-1")
    fake.state.set_scenario(Scenario(wrapped_error=error, wrapped_error_at_chunk=5), model="up-1")
    chat = ask(model="group", text="hello")
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    events = [event async for event in router.stub.ChatStream(request)]

    said = [c.delta.text for e in events if e.HasField("chunk") for c in e.chunk.choices]
    assert "".join(said) and events[-1].HasField("error")
    status = await _status(router, "first/up-1")
    assert (status.cooldown_until_unix > 0, status.failures) == (deployments, int(deployments))


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
async def test_a_cohere_generation_that_failed_is_that_answers_failure(
    fake: FakeUpstream, start_router: StartRouter, reason: str, stream: bool
) -> None:
    """Cohere's finish_reason ERROR (or TIMEOUT) is the generation's own failure: a unary
    answer goes on to the group's next, a stream that sent its text ends with an error event;
    the deployment is neither cooled nor counted for it."""
    router = await _router(fake, start_router, "cohere", "up-1")
    fake.state.set_scenario(Scenario(finish_reason=reason), model="up-1")
    chat = ask(model="group", text="hello")
    if stream:
        request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
        events = [event async for event in router.stub.ChatStream(request)]
        assert events[-1].HasField("error") and reason in events[-1].error.message
    else:
        answer = await router.stub.Chat(chat)
        assert answer.route.deployment == "beta/model-b"

    status = await _status(router, "first/up-1")
    assert (status.cooldown_until_unix, status.failures) == (0, 0)


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_llama_cpps_error_line_is_scoped_alike_on_either_api(
    fake: FakeUpstream, start_router: StartRouter, api: str
) -> None:
    """llama.cpp's mid-stream `error: {...}` line, a server error, is that one answer's whether
    the deployment speaks chat completions or the Responses API."""
    line = 'error: {"code":500,"message":"decode failed","type":"server_error"}\n\n'
    fake.state.set_scenario(Scenario(between_events=line), model="model-a")
    config = base_config(fake.base_url)
    if api == "responses":
        config["models"]["chain"]["deployments"][0]["api"] = "responses"
    router = await start_router(config)
    chat = ask(model="chain", text="hello")
    request = pb.ChatStreamRequest(params=chat.params, routing=chat.routing)
    served = [
        e.route.deployment async for e in router.stub.ChatStream(request) if e.route.deployment
    ]

    assert served == ["beta/model-b"]
    status = await _status(router, "alpha/model-a")
    assert (status.cooldown_until_unix, status.failures) == (0, 0)


async def test_a_media_streams_server_error_event_is_scoped_alike(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """A speech stream's `error` event (a server error) is that one answer's too."""
    router = await start_router(base_config(fake.base_url))
    fake.state.set_scenario(Scenario(wrapped_error_at_chunk=2), model="model-a")
    fields = {"input": "hi there", "voice": "alloy", "stream_format": "sse"}
    params = media_pb2.MediaParams(
        operation=media_pb2.MEDIA_OPERATION_AUDIO_SPEECH,
        model="chain",
        params_json=orjson.dumps(fields).decode(),
    )
    events = [e async for e in router.stub.MediaStream(pb.MediaStreamRequest(params=params))]

    assert events[-1].HasField("error")  # after its first event: no failover
    status = await _status(router, "alpha/model-a")
    assert (status.cooldown_until_unix, status.failures) == (0, 0)
