"""Guessed keys through the edge, as an OpenAI SDK user meets them: the edge names each caller's
address to the router (`x-forwarded-for`, as uvicorn read it: X-Forwarded-For from loopback,
which uvicorn trusts by default, stands for callers elsewhere), so one address's burst of wrong
keys gets a 429 with Retry-After while the right key from another address still works; over
the wire and in-process (`switchboard serve`). A caller the edge does not trust cannot name an
address of its own choosing to guess on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client, guarded_config

pytestmark = pytest.mark.timeout(60)

StartEdge = Callable[..., Awaitable[Edge]]
APP_KEY, WRONG = "sk-app-0123456789", "sk-guess-Zz9-wrong"
ATTACKER, OTHER = "203.0.113.7", "198.51.100.20"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def guarded(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("app", APP_KEY))
    config["auth"]["key_throttle"] = {"per_address": 3, "window_s": 60}
    return await start_router(config, clock=clock)


def sdk(edge: Edge, key: str, address: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1",
        api_key=key,
        max_retries=0,
        timeout=10,
        default_headers={"x-forwarded-for": address},
    )


async def guess(edge: Edge, address: str) -> None:
    """Three wrong keys from `address`, on three routes (unary, streamed, listing)."""
    async with sdk(edge, WRONG, address) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="chain", messages=HI)
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="chain", messages=HI, stream=True)
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()


@pytest.mark.parametrize("in_process", [False, True], ids=["wire", "in-process"])
async def test_a_burst_of_wrong_keys_is_429_for_its_address_only(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    in_process: bool,
) -> None:
    clock = ManualClock()
    edge = await start_edge(await guarded(fake, start_router, clock), in_process=in_process)

    await guess(edge, ATTACKER)
    clock.advance(15)
    async with sdk(edge, APP_KEY, ATTACKER) as attacker:  # the right key too: it may be a guess
        with pytest.raises(openai.RateLimitError) as caught:
            await attacker.chat.completions.create(model="chain", messages=HI)
    async with sdk(edge, APP_KEY, OTHER) as other:
        answer = await other.chat.completions.create(model="chain", messages=HI)

    refused = caught.value
    assert refused.status_code == 429 and refused.code == "too_many_failed_authentications"
    assert refused.response.headers["retry-after"] == "45"
    assert APP_KEY not in refused.response.text and WRONG not in refused.response.text
    assert answer.choices[0].message.content


async def test_a_caller_the_edge_does_not_trust_cannot_pick_its_address(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no proxy trusted by the edge (uvicorn's FORWARDED_ALLOW_IPS), the X-Forwarded-For
    a caller sends is its own words: the edge names the caller's real address to the router, so
    a fresh address per guess buys nothing."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.250")
    edge = await start_edge(await guarded(fake, start_router, ManualClock()))

    for i in range(3):
        async with sdk(edge, WRONG, f"192.0.2.{i}") as wrong:
            with pytest.raises(openai.AuthenticationError):
                await wrong.models.list()
    async with sdk(edge, APP_KEY, OTHER) as other:
        with pytest.raises(openai.RateLimitError):
            await other.models.list()


async def test_an_admin_key_on_chat_is_an_unknown_keys_401(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """No oracle of the admin key through the edge either: the same 401, body and headers."""
    ops = "sk-ops-admin-0123456789"
    config = guarded_config(
        fake.base_url, client("app", APP_KEY), client("ops", ops, scopes=["admin"])
    )
    edge = await start_edge(await start_router(config, clock=ManualClock()))

    refusals = []
    for key in (WRONG, ops):
        async with sdk(edge, key, OTHER) as caller:
            with pytest.raises(openai.AuthenticationError) as caught:
                await caller.chat.completions.create(model="chain", messages=HI)
        response = caught.value.response
        varying = ("date", "x-request-id", "openai-processing-ms")
        headers = {k: v for k, v in response.headers.items() if k not in varying}
        refusals.append((response.status_code, response.json(), headers))

    assert refusals[0] == refusals[1]
    assert refusals[0][1]["error"]["code"] == "invalid_api_key"
