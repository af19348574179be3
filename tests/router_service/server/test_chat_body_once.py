"""A chat's OpenAI body is written once: the servicer's check (`validate_chat`) writes it, and the
first attempt, when it sends those very params, starts its upstream request from it instead of
writing it again. What reaches the upstream is byte for byte what a body written anew gives, for
every kind, unary and streamed, on a fallback to another deployment (its own model), a
deployment without the reasoning knob and stop sequences past a cap (params of their own)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clients import chat_params_from_openai, chat_params_to_openai
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.engine import RequestContext
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.providers import _base
from router_service.server import _calls
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.test_reasoning_sdk import config as kinds_config

pytestmark = pytest.mark.timeout(60)

HELLO: Any = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
FIVE_STOPS = ["a1", "b2", "c3", "d4", "e5"]  # past openai's cap of 4: params of their own
EXTRAS: dict[str, dict[str, Any]] = {
    "plain": {"max_tokens": 64, "temperature": 0.5},
    "reasoning": {"reasoning_effort": "high", "max_tokens": 300},
    "stops": {"stop": FIVE_STOPS, "max_tokens": 32},
    "extra": {"user": "u-1", "top_p": 0.9, "metadata": {"a": "b"}},
}
MODELS = [
    "gpt",
    "sonnet",
    "gemini",
    "command",
    "br-claude",
    "br-nova",
    "vx-gemini",
    "vx-sonnet",
    "responses",
    "no-reasoning",
    "chain",  # its first deployment fails once: the second gets the call, with its own model
]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = kinds_config(fake)
    out["models"] |= {
        "responses": {
            "deployments": [{"provider": "alpha", "model": "house-reasoner", "api": "responses"}]
        },
        "no-reasoning": {
            "deployments": [{"provider": "alpha", "model": "gpt-4o", "reasoning": False}]
        },
    }
    return out


def request(model: str, extra: str) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, **EXTRAS[extra]}


async def call(router: RouterHandle, body: dict[str, Any], stream: bool) -> None:
    params, _ = chat_params_from_openai(dict(body))
    if not stream:
        await router.stub.Chat(pb.ChatRequest(params=params))
        return
    async for _ in router.stub.ChatStream(pb.ChatStreamRequest(params=params)):
        pass


async def sent(router: RouterHandle, fake: FakeUpstream, body: dict[str, Any], stream: bool) -> Any:
    """What the upstream received for `body`: each attempt's path and body, in order."""
    fake.state.reset()
    if body["model"] == "chain":
        fake.state.set_scenario(Scenario(status=500, times=1), model="model-a")
    await call(router, body, stream)
    await fake.state.wait_idle()
    return [(r.path, r.model, orjson.dumps(r.body)) for r in fake.state.records]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("extra", sorted(EXTRAS))
async def test_every_kind_receives_the_body_a_new_writing_gives(
    fake: FakeUpstream,
    start_router: StartRouter,
    monkeypatch: pytest.MonkeyPatch,
    extra: str,
    stream: bool,
) -> None:
    # A router each: the fallback's failed deployment is cooled down after its failure.
    router = await start_router(config(fake))
    with monkeypatch.context() as anew:  # as before: every attempt writes its body itself
        anew.setattr(RequestContext, "take_body", lambda self, params: None)
        before = [await sent(router, fake, request(m, extra), stream) for m in MODELS]
    router = await start_router(config(fake))
    after = [await sent(router, fake, request(m, extra), stream) for m in MODELS]
    assert after == before
    assert all(before)  # every model was called
    assert len(before[MODELS.index("chain")]) == 2  # the fallback was taken


async def test_a_chat_writes_its_body_once_and_a_fallback_its_own(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = await start_router(base_config(fake.base_url))
    written: list[str] = []
    codec = chat_params_to_openai

    def counted(params: Any) -> dict[str, Any]:
        written.append(params.model)
        return codec(params)

    monkeypatch.setattr(_calls, "chat_params_to_openai", counted)
    monkeypatch.setattr(_base, "chat_params_to_openai", counted)
    for stream in (False, True):
        await call(router, {"model": "chain", "messages": HELLO}, stream)
        assert written == ["chain"]
        written.clear()
    # The first attempt took the written body; the second (model-b) writes its own.
    fake.state.set_scenario(Scenario(status=500, times=1), model="model-a")
    await call(router, {"model": "chain", "messages": HELLO}, False)
    assert written == ["chain", "chain"]
    assert [r.model for r in fake.state.records][-2:] == ["model-a", "model-b"]
