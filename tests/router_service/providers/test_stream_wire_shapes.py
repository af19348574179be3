"""What real upstreams write into an event stream besides its events, read by the router over
loopback: keep-alives (a `: ping` comment, an empty `data:` a proxy sends) are nothing, and a
failure said in a way of its own (llama.cpp's `error:` line) is that failure, classified."""

from __future__ import annotations

import pytest

from clients import chat_params_from_openai
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import SYSTEM_CLOCK
from router_service.config import HttpConfig, ProviderConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.providers import ChatCall, OpenAIAdapter, create_http_client
from router_service.providers._base import UPSTREAM_ALIVE
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat, chat_stream


async def streamed_text(router: RouterHandle) -> tuple[str, list[str]]:
    """The stream's text and its chunks' finish reasons (the raw upstream words)."""
    text, finished = [], []
    async for event in router.stub.ChatStream(chat_stream(text="one two three")):
        chunks = [event.chunk] if event.WhichOneof("event") == "chunk" else []
        chunks += list(event.chunks.chunks) if event.WhichOneof("event") == "chunks" else []
        for chunk in chunks:
            for choice in chunk.choices:
                text.append(choice.delta.text)
                finished += [choice.finish_reason_raw] if choice.finish_reason_raw else []
    return "".join(text), finished


@pytest.mark.parametrize(
    "keepalive",
    [
        b"data:\n\n",  # an empty data field: no event (the SSE standard), whatever a proxy means
        b"data: \r\n\r\n",
        b": keep-alive\n\n",
    ],
)
async def test_keep_alives_between_events_are_not_events(
    fake: FakeUpstream, start_router: StartRouter, keepalive: bytes
) -> None:
    fake.state.set_scenario(Scenario(content="one two three", between_events=keepalive.decode()))
    router = await start_router(base_config(fake.base_url))
    text, finished = await streamed_text(router)
    assert text == "one two three"
    assert finished == ["stop"]
    assert fake.state.count() == 1  # no other deployment was asked


async def test_llama_cpps_error_line_fails_the_stream_over_to_the_next_deployment(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # llama.cpp's server (builds of 2025) says a failure after its 200 in a field of its own,
    # `error: {...}`, which the SSE standard would ignore: the stream then read as a success.
    line = b'error: {"code":503,"message":"Loading model","type":"unavailable_error"}\n\n'
    fake.state.set_scenario(Scenario(between_events=line.decode()), model="model-a")
    fake.state.set_scenario(Scenario(content="served by b"), model="model-b")
    router = await start_router(base_config(fake.base_url))
    assert await streamed_text(router) == ("served by b", ["stop"])
    assert [call.model for call in fake.state.calls()] == ["model-a", "model-b"]


LLAMA_CPP_TOO_LONG = {
    "code": 500,  # its first builds with the type; 400 since
    "message": "the request exceeds the available context size. try increasing the context "
    "size or enable context shift",
    "type": "exceed_context_size_error",
    "n_prompt_tokens": 1407,
    "n_ctx": 256,
}
XAI_TOO_LONG = {
    "code": "Client specified an invalid argument",
    "error": "This model's maximum prompt length is 131072 but the request contains 136973 tokens.",
}


VLLM_TOO_LONG = {
    "object": "error",
    "message": "The decoder prompt (length 9000) is longer than the maximum model length of "
    "8192. Make sure that `max_model_len` is no smaller than the number of text tokens.",
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}
TGI_TOO_LONG = {
    "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. "
    "Given: 9000 `inputs` tokens and 100 `max_new_tokens`",
    "error_type": "validation",
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": LLAMA_CPP_TOO_LONG}),
        (400, XAI_TOO_LONG),
        (400, VLLM_TOO_LONG),
        (422, TGI_TOO_LONG),
    ],
)
async def test_a_prompt_over_a_servers_context_goes_to_the_next_deployment(
    fake: FakeUpstream, start_router: StartRouter, status: int, body: dict[str, object]
) -> None:
    # CONTEXT_TOO_LONG: another deployment (a longer window) may take it; not the caller's
    # BAD_REQUEST (xAI's words), nor the deployment's failure that cools it (llama.cpp's 500).
    fake.state.set_scenario(Scenario(status=status, error_body=body), model="model-a")
    fake.state.set_scenario(Scenario(content="served by b"), model="model-b")
    deployments = [
        {"provider": "alpha", "model": "model-a", "context_window": 8192},
        {"provider": "beta", "model": "model-b", "context_window": 131072},
    ]
    models = {"chain": {"deployments": deployments}}
    router = await start_router(base_config(fake.base_url, models=models))
    answer = await router.stub.Chat(chat(text="a long prompt"))
    assert answer.completion.choices[0].message.text == "served by b"
    stats = await router.admin.GetRoutingStats(admin_pb.GetRoutingStatsRequest())
    shown = {d.deployment: d for d in stats.deployments}
    assert shown["alpha/model-a"].cooldown_until_unix == 0


@pytest.mark.parametrize("keepalive", [b": OPENROUTER PROCESSING\n\n", b"data:\n\n"])
async def test_a_keep_alive_is_the_upstreams_sign_of_life(
    fake: FakeUpstream, keepalive: bytes
) -> None:
    # OpenRouter's comments while a model queues or reasons before its first words: the
    # first-chunk window starts again at each (UPSTREAM_ALIVE), as at Anthropic's `ping`.
    fake.state.set_scenario(Scenario(content="one two", between_events=keepalive.decode()))
    params, _ = chat_params_from_openai(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    http = create_http_client(HttpConfig())
    config = ProviderConfig(base_url=fake.base_url, keys=["sk-or"])  # type: ignore[list-item]
    adapter = OpenAIAdapter("openrouter", config, http, SYSTEM_CLOCK)
    async with http, adapter.stream_chat(ChatCall("m", "sk-or", params, 5.0)) as chunks:
        received = [chunk async for chunk in chunks]
    assert any(chunk is UPSTREAM_ALIVE for chunk in received)
    said = [c for c in received if c is not UPSTREAM_ALIVE]
    assert "".join(c.choices[0].delta.text for c in said if c.choices) == "one two"


async def test_an_error_line_in_a_responses_stream_fails_it_over(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The same line in a Responses API stream: `{"error": {...}}`, an event with no `type`, was
    # taken for a sign of life and the rest of the stream read as a success.
    line = b'error: {"code":503,"message":"Loading model","type":"unavailable_error"}\n\n'
    fake.state.set_scenario(Scenario(between_events=line.decode()), model="model-a")
    fake.state.set_scenario(Scenario(content="served by b"), model="model-b")
    config = base_config(fake.base_url)
    config["models"]["chain"]["deployments"][0]["api"] = "responses"
    router = await start_router(config)
    assert await streamed_text(router) == ("served by b", ["stop"])
    assert [call.model for call in fake.state.calls()] == ["model-a", "model-b"]
